"""Bearer JWTs on the External Accounts API: each way a token can be wrong, and the right ones."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from chatapp_accounts.security.keys import generate_rsa_key_pair
from tests.conftest import TenantCreds
from tests.jwt_tokens import alg_none, claims, hs256_with_public_key, sdk_token, signed

from .helpers import APPS, EA, MESSAGES, assert_error, new_messenger

UNAUTHORISED = {
    "title": "Unauthorised",
    "detail": "Request header 'Authorization' missing / Invalid Token",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app_keys(client: TestClient, alice: TenantCreds) -> dict[str, str]:
    r = client.post(APPS, json={"name": "jwt", "capabilities": MESSAGES}, headers=alice.headers)
    body = r.json()
    return {
        "id": body["id"],
        "private": body["keys"]["private_key"],
        "public": body["keys"]["public_key"],
    }


def test_sdk_token_works_on_every_operation(
    client: TestClient, alice: TenantCreds, app_keys: dict[str, str]
) -> None:
    h = bearer(sdk_token(app_keys["id"], app_keys["private"]))
    r = client.post(f"{EA}/messenger", json={"external_id": "j1", "access_token": "t"}, headers=h)
    assert r.status_code == 201
    assert r.json()["api_key"] == alice.api_key  # the tenant is the application's owner
    assert client.get(f"{EA}/messenger/j1", headers=h).json()["external_id"] == "j1"
    assert client.patch(f"{EA}/messenger/j1", json={"name": "n"}, headers=h).json()["name"] == "n"
    assert client.get(EA, headers=h).json()["total_items"] == 1
    link = client.post(
        f"{EA}/messenger/j1/applications", json={"application": app_keys["id"]}, headers=h
    )
    assert link.json()["applications"] == [app_keys["id"]]
    assert (
        client.delete(f"{EA}/messenger/j1/applications/{app_keys['id']}", headers=h).status_code
        == 204
    )
    assert client.delete(f"{EA}/messenger/j1", headers=h).status_code == 204


def test_application_api_stays_basic_only(client: TestClient, app_keys: dict[str, str]) -> None:
    r = client.get(APPS, headers=bearer(sdk_token(app_keys["id"], app_keys["private"])))
    assert_error(r, 401)
    assert "Bearer" not in r.headers["www-authenticate"]


def _now() -> int:
    return int(time.time())


OTHER_PRIVATE, _ = generate_rsa_key_pair()

# name -> token maker(app id, private key, public key)
BAD: dict[str, Callable[[str, str, str], str]] = {
    "expired": lambda a, k, p: signed(k, claims(a, iat=_now() - 3600, exp=_now() - 600)),
    "not yet valid": lambda a, k, p: signed(k, claims(a, nbf=_now() + 600, exp=_now() + 900)),
    "lifetime over 24 h": lambda a, k, p: signed(k, claims(a, exp=_now() + 24 * 3600 + 60)),
    "exp absent and iat old": lambda a, k, p: signed(k, claims(a, iat=_now() - 20 * 60)),
    "signed by another key": lambda a, k, p: signed(OTHER_PRIVATE, claims(a)),
    "unknown application": lambda a, k, p: signed(k, claims("no-such-app")),
    "alg none": lambda a, k, p: alg_none(claims(a)),
    "HS256 with the public key": lambda a, k, p: hs256_with_public_key(p, claims(a)),
    "missing jti": lambda a, k, p: signed(k, claims(a, jti=None)),
    "missing iat": lambda a, k, p: signed(k, claims(a, iat=None, exp=_now() + 60)),
    "missing application_id": lambda a, k, p: signed(
        k, {kk: v for kk, v in claims(a).items() if kk != "application_id"}
    ),
    "iat not a number": lambda a, k, p: signed(k, {**claims(a), "iat": "yesterday"}),
    "acl not an object": lambda a, k, p: signed(k, claims(a, acl=["/**"])),
    "garbage header": lambda a, k, p: "%%%." + signed(k, claims(a)).split(".", 1)[1],
    "garbage payload": lambda a, k, p: (lambda t: f"{t[0]}.!!!.{t[2]}")(
        signed(k, claims(a)).split(".")
    ),
    "garbage signature": lambda a, k, p: signed(k, claims(a)).rsplit(".", 1)[0] + ".AAAA",
    "two segments": lambda a, k, p: ".".join(signed(k, claims(a)).split(".")[:2]),
    "not a jwt": lambda a, k, p: "hello",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tokens_are_401(client: TestClient, app_keys: dict[str, str], case: str) -> None:
    token = BAD[case](app_keys["id"], app_keys["private"], app_keys["public"])
    r = client.get(EA, headers=bearer(token))
    assert r.status_code == 401, case
    assert r.json() == UNAUTHORISED
    assert "Bearer" in r.headers["www-authenticate"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b c", "bearer", "Bearer\tx"])
def test_malformed_bearer_headers_are_401(client: TestClient, header: str) -> None:
    r = client.get(EA, headers={"Authorization": header})
    assert r.status_code == 401 and r.json() == UNAUTHORISED


def test_a_claim_that_cannot_be_text_is_401_not_500(client: TestClient) -> None:
    """JSON lets a claim be a lone surrogate ("\\ud800"), which no database driver can send:
    the forged token is refused before any read, on GET by id and on the list."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    claims_json = b'{"application_id":"\\ud800","iat":%d,"jti":"x"}' % int(time.time())
    token = b".".join([part(b'{"alg":"RS256","typ":"JWT"}'), part(claims_json), part(b"sig")])
    for url in (f"{EA}/messenger/p1", EA):
        r = client.get(url, headers=bearer(token.decode()))
        assert r.status_code == 401, r.text
        assert r.json() == UNAUTHORISED


def test_other_tenants_application_sees_nothing_of_ours(
    client: TestClient, alice: TenantCreds, bob: TenantCreds
) -> None:
    new_messenger(client, alice, "alice-page")
    bobs = client.post(
        APPS, json={"name": "b", "capabilities": MESSAGES}, headers=bob.headers
    ).json()
    h = bearer(sdk_token(bobs["id"], bobs["keys"]["private_key"]))
    assert_error(client.get(f"{EA}/messenger/alice-page", headers=h), 404)
    assert_error(client.delete(f"{EA}/messenger/alice-page", headers=h), 404)
    assert client.get(EA, headers=h).json()["_embedded"] == []


@pytest.mark.parametrize(
    ("acl", "status"),
    [
        ({"paths": {"/*/chatapp-accounts/**": {}}}, 200),
        ({"paths": {"/v1/calls/**": {}, "/*/users/**": {}}}, 403),
        ({"paths": {}}, 403),
    ],
)
def test_acl(
    client: TestClient, app_keys: dict[str, str], acl: dict[str, Any], status: int
) -> None:
    r = client.get(
        f"{EA}/?page_size=5",
        headers=bearer(sdk_token(app_keys["id"], app_keys["private"], acl=acl)),
    )
    assert r.status_code == status
    if status == 403:
        body = assert_error(r, 403)
        assert (
            body["title"] == "Wrong authentication - You are not authorised to access this resource"
        )


WHOLE_API = {"paths": {"/*/chatapp-accounts/**": {}}}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", EA, None, 200),
        ("GET", f"{EA}?provider=messenger", None, 200),
        ("GET", f"{EA}/", None, 200),
        ("POST", f"{EA}/messenger", {"external_id": "acl-new", "access_token": "t"}, 201),
        ("GET", f"{EA}/messenger/acl-page", None, 200),
        ("PATCH", f"{EA}/messenger/acl-page", {"name": "renamed"}, 200),
        ("DELETE", f"{EA}/messenger/acl-page", None, 204),
        ("POST", f"{EA}/messenger/acl-page/applications", "APP", 200),
        ("DELETE", f"{EA}/messenger/acl-page/applications/APP", None, 409),
    ],
)
def test_acl_of_the_whole_api_admits_every_path_shape(
    client: TestClient,
    alice: TenantCreds,
    app_keys: dict[str, str],
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    """The shape of Vonage's own tokens: `**` is zero or more segments, so the list itself is covered."""
    new_messenger(client, alice, "acl-page")
    path = path.replace("APP", app_keys["id"])
    payload = {"application": app_keys["id"]} if body == "APP" else body
    token = sdk_token(app_keys["id"], app_keys["private"], acl=WHOLE_API)
    r = client.request(method, path, json=payload, headers=bearer(token))
    assert r.status_code == status, r.text
    narrow = sdk_token(app_keys["id"], app_keys["private"], acl={"paths": {"/*/users/**": {}}})
    denied = client.request(method, path, json=payload, headers=bearer(narrow))
    assert_error(denied, 403)


def test_exp_may_be_absent_and_nbf_in_the_past_is_fine(
    client: TestClient, app_keys: dict[str, str]
) -> None:
    token = signed(app_keys["private"], claims(app_keys["id"], nbf=_now() - 60))
    assert client.get(EA, headers=bearer(token)).status_code == 200


def test_replacing_the_key_ends_old_tokens_at_once(
    client: TestClient, alice: TenantCreds, app_keys: dict[str, str]
) -> None:
    old = bearer(sdk_token(app_keys["id"], app_keys["private"]))
    assert client.get(EA, headers=old).status_code == 200
    new_private, new_public = generate_rsa_key_pair()
    r = client.put(
        f"{APPS}/{app_keys['id']}",
        json={"name": "jwt", "capabilities": MESSAGES, "keys": {"public_key": new_public}},
        headers=alice.headers,
    )
    assert r.status_code == 200
    assert client.get(EA, headers=old).status_code == 401
    assert client.get(EA, headers=bearer(sdk_token(app_keys["id"], new_private))).status_code == 200
    client.delete(f"{APPS}/{app_keys['id']}", headers=alice.headers)
    assert client.get(EA, headers=bearer(sdk_token(app_keys["id"], new_private))).status_code == 401
