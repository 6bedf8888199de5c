"""A token stops working at once, in every server process, when its application's key is
replaced or the application deleted: two independent servers on one database, each of which
has the token cached, both refuse it after the change is made through the other."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from chatapp_accounts.security.keys import generate_rsa_key_pair
from tests.jwt_tokens import sdk_token

from .server import base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"


def test_key_replacement_reaches_every_process(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with running_server(env) as a, running_server(env) as b:
        app = httpx.post(
            f"{a.url}/v2/applications",
            auth=auth,
            json={"name": "x", "capabilities": {"messages": {}}},
        ).json()
        old = {"Authorization": f"Bearer {sdk_token(app['id'], app['keys']['private_key'])}"}
        for server in (a, b, a, b):  # the second round is served from each process's cache
            assert httpx.get(f"{server.url}{EA}", headers=old).status_code == 200

        new_private, new_public = generate_rsa_key_pair()
        r = httpx.put(
            f"{a.url}/v2/applications/{app['id']}",
            auth=auth,
            json={
                "name": "x",
                "capabilities": {"messages": {}},
                "keys": {"public_key": new_public},
            },
        )
        assert r.status_code == 200
        for server in (b, a):
            assert httpx.get(f"{server.url}{EA}", headers=old).status_code == 401
        new = {"Authorization": f"Bearer {sdk_token(app['id'], new_private)}"}
        for server in (a, b):
            assert httpx.get(f"{server.url}{EA}", headers=new).status_code == 200

        assert httpx.delete(f"{b.url}/v2/applications/{app['id']}", auth=auth).status_code == 204
        for server in (a, b):
            assert httpx.get(f"{server.url}{EA}", headers=new).status_code == 401
