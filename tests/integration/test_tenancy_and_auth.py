"""One tenant never sees another's data; Basic auth failures; revocation takes effect at once."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from chatapp_accounts.domain.tenants import revoke_tenant
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, sync

from .helpers import APPS, EA, assert_error, new_application, new_messenger

UNAUTHORISED = {
    "title": "Unauthorised",
    "detail": "Request header 'Authorization' missing / Invalid Token",
}


def test_another_tenants_account_is_as_if_absent(
    client: TestClient, alice: TenantCreds, bob: TenantCreds
) -> None:
    app = new_application(client, alice)
    new_messenger(client, alice, "42", applications=[app["id"]], name="alice's")
    bobs_app = new_application(client, bob)
    acc = f"{EA}/messenger/42"
    assert_error(client.get(acc, headers=bob.headers), 404)
    assert_error(client.patch(acc, json={"name": "mine"}, headers=bob.headers), 404)
    assert_error(client.delete(acc, headers=bob.headers), 404)
    assert_error(
        client.post(
            f"{acc}/applications", json={"application": bobs_app["id"]}, headers=bob.headers
        ),
        403,
    )
    assert_error(client.delete(f"{acc}/applications/{app['id']}", headers=bob.headers), 403)
    listing = client.get(EA, headers=bob.headers).json()
    assert listing["_embedded"] == [] and listing["total_items"] == 0
    # Alice's account is untouched.
    assert client.get(acc, headers=alice.headers).json() == {
        "external_id": "42",
        "api_key": alice.api_key,
        "provider": "messenger",
        "name": "alice's",
        "applications": [app["id"]],
        "access_token": "token-42",
    }


def test_another_tenants_application_is_as_if_absent(
    client: TestClient, alice: TenantCreds, bob: TenantCreds
) -> None:
    app = new_application(client, alice, name="alice app")
    url = f"{APPS}/{app['id']}"
    assert_error(client.get(url, headers=bob.headers), 404)
    assert_error(client.put(url, json={"name": "stolen"}, headers=bob.headers), 404)
    assert_error(client.delete(url, headers=bob.headers), 404)
    assert client.get(APPS, headers=bob.headers).json()["total_items"] == 0
    assert client.get(url, headers=alice.headers).json()["name"] == "alice app"


def _basic(raw: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Digest abc"},
        _basic("no-colon"),
        _basic(":secret"),
        _basic("key:"),
    ],
)
def test_bad_credentials_are_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get(EA, headers=headers)
    assert r.status_code == 401
    assert r.json() == UNAUTHORISED
    assert r.headers["www-authenticate"].startswith("Basic")


def test_wrong_secret_and_unknown_key_are_401(client: TestClient, alice: TenantCreds) -> None:
    for raw in (f"{alice.api_key}:wrong", f"deadbeef:{alice.api_secret}"):
        r = client.get(EA, headers=_basic(raw))
        assert r.status_code == 401 and r.json() == UNAUTHORISED


def test_revoked_tenant_stops_working_at_once(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    assert client.get(EA, headers=alice.headers).status_code == 200
    sync(revoke_tenant(uow_factory, alice.api_key))
    assert client.get(EA, headers=alice.headers).status_code == 401
    assert client.get(APPS, headers=alice.headers).status_code == 401


def test_auth_comes_before_validation(client: TestClient) -> None:
    r = client.post(f"{EA}/messenger", json={"bad": 1})
    assert r.status_code == 401
