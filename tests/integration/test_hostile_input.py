"""Hostile input never gives a 500 or a traceback: a clear 4xx in the API's own error shape,
and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import Settings
from chatapp_accounts.storage.tables import accounts, applications
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds

from .helpers import APPS, EA, new_application, new_messenger

HOSTILE_BODIES: dict[str, bytes] = {
    "malformed": b'{"external_id": "1",',
    "array": b'[{"external_id": "1", "access_token": "t"}]',
    "scalar string": b'"hello"',
    "number": b"42",
    "null": b"null",
    "duplicate keys": b'{"external_id": "1", "external_id": "2", "access_token": "t", "name": "n"}',
    "deep nesting": b'{"name": "n", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "moderately deep nesting": b'{"name": "n", "capabilities": ' + b'{"a":' * 40 + b"1" + b"}" * 41,
    "invalid utf-8": b'{"external_id": "\xff\xfe", "access_token": "t", "name": "n"}',
    "utf-16": '{"external_id": "1", "access_token": "t", "name": "n"}'.encode("utf-16"),
    "lone surrogate": b'{"external_id": "1", "access_token": "\\ud800", "name": "n"}',
    "nul byte": b'{"external_id": "1", "access_token": "a\\u0000b", "name": "n\\u0000"}',
    "raw control char": b'{"external_id": "1", "access_token": "a\x01b", "name": "n"}',
    "NaN": b'{"external_id": "1", "access_token": NaN, "name": "n"}',
    "huge exponent": b'{"external_id": "1", "access_token": 1e999, "name": 1e999}',
    "numbers for strings": b'{"external_id": 1, "access_token": 2, "name": 3}',
    "objects for strings": b'{"external_id": {}, "access_token": [], "name": {"a": 1}}',
    "booleans": b'{"external_id": true, "access_token": false, "name": null}',
    "very long strings": b'{"external_id": "'
    + b"a" * 200_000
    + b'", "access_token": "t", "name": "'
    + b"n" * 100_000
    + b'"}',
    "empty": b"",
    "whitespace": b"   \n ",
}


def counts(uow_factory: SqlUnitOfWorkFactory) -> tuple[int, int]:
    with uow_factory.db.engine.connect() as conn:
        n_accounts = conn.execute(select(func.count()).select_from(accounts)).scalar_one()
        n_apps = conn.execute(select(func.count()).select_from(applications)).scalar_one()
    return n_accounts, n_apps


def assert_clean_4xx(r: Any, status: int, api: str) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    assert "Traceback" not in r.text
    body: dict[str, Any] = r.json()
    if api == "accounts":
        assert body["type"].startswith("https://www.nexmo.com/messages/Errors#")
        if status == 400:
            assert body["invalid_params"] and body["detail"].startswith("Found errors validating")
    else:
        assert body["type"].startswith("https://developer.nexmo.com/api-errors")
        if status == 400:
            assert body["invalid_parameters"]
    return body


@pytest.fixture
def world(client: TestClient, alice: TenantCreds) -> dict[str, Any]:
    app = new_application(client, alice)
    new_messenger(client, alice, "existing")
    return {"app": app["id"]}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_hostile_bodies_on_every_write(
    client: TestClient,
    alice: TenantCreds,
    uow_factory: SqlUnitOfWorkFactory,
    world: dict[str, Any],
    case: str,
) -> None:
    before = counts(uow_factory)
    headers = {**alice.headers, "Content-Type": "application/json"}
    raw = HOSTILE_BODIES[case]
    for method, url, api in write_targets(world):
        r = client.request(method, url, content=raw, headers=headers)
        assert_clean_4xx(r, 400, api)
    assert_nothing_changed(client, alice, uow_factory, before)


def write_targets(world: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every operation that takes a JSON body: (method, url, api)."""
    return [
        ("POST", f"{EA}/messenger", "accounts"),
        ("PATCH", f"{EA}/messenger/existing", "accounts"),
        ("POST", f"{EA}/messenger/existing/applications", "accounts"),
        ("POST", APPS, "applications"),
        ("PUT", f"{APPS}/{world['app']}", "applications"),
    ]


def assert_nothing_changed(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory, before: Any
) -> None:
    assert counts(uow_factory) == before
    existing = client.get(f"{EA}/messenger/existing", headers=alice.headers).json()
    assert existing["access_token"] == "token-existing" and existing["applications"] == []


def test_no_body_and_no_content_type_is_400_not_415(
    client: TestClient,
    alice: TenantCreds,
    uow_factory: SqlUnitOfWorkFactory,
    world: dict[str, Any],
) -> None:
    """The body is required: a request without one breaks the schema (400); 415 is for a body
    of another media type."""
    before = counts(uow_factory)
    for method, url, api in write_targets(world):
        r = client.request(method, url, headers=alice.headers)
        body = assert_clean_4xx(r, 400, api)
        problems = body.get("invalid_params") or body.get("invalid_parameters")
        assert [p["name"] for p in problems] == ["body"], problems
        with_body = client.request(method, url, content=b'{"name": "n"}', headers=alice.headers)
        assert_clean_4xx(with_body, 415, api)
    assert_nothing_changed(client, alice, uow_factory, before)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
        "json",
        "application/json; charset=latin-1",
        "application/json; charset=ISO-8859-1",
        'application/json; charset="utf-16"',
    ],
)
def test_wrong_content_types_are_415(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory, content_type: str
) -> None:
    before = counts(uow_factory)
    body = b'{"external_id": "1", "access_token": "t", "name": "n"}'
    for url, api in ((f"{EA}/messenger", "accounts"), (APPS, "applications")):
        headers = {**alice.headers, "Content-Type": content_type}
        assert_clean_4xx(client.post(url, content=body, headers=headers), 415, api)
    assert counts(uow_factory) == before


@pytest.fixture
def small_body_client(settings: Settings, engine: Any) -> Iterator[TestClient]:
    app = create_app(settings.with_(max_body_bytes=1000), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_bodies_over_the_limit_are_413(
    small_body_client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    big = b'{"external_id": "1", "access_token": "' + b"t" * 2000 + b'"}'
    headers = {**alice.headers, "Content-Type": "application/json"}
    for url, api in ((f"{EA}/messenger", "accounts"), (APPS, "applications")):
        assert_clean_4xx(small_body_client.post(url, content=big, headers=headers), 413, api)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds
            yield big[:600]
            yield big[600:]

        assert_clean_4xx(small_body_client.post(url, content=chunks(), headers=headers), 413, api)
    assert counts(uow_factory) == (0, 0)
    ok = small_body_client.post(
        f"{EA}/messenger", json={"external_id": "1", "access_token": "t"}, headers=alice.headers
    )
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "path",
    [
        "/messenger/%2E%2E",
        "/messenger/a%2Fb",
        "/messenger/%2e%2e%2f%2e%2e%2fv2",
        "/messenger/%E2%9C%93",
        "/messenger/%00",
        "/messenger/%FF%FE",
        "/messenger/" + "a" * 10_000,
        "/whatsapp/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_odd_paths_are_404_in_shape(
    client: TestClient, alice: TenantCreds, world: dict[str, Any], path: str
) -> None:
    r = client.get(EA + path, headers=alice.headers)
    assert_clean_4xx(r, 404, "accounts")


def test_odd_link_paths_are_403(
    client: TestClient, alice: TenantCreds, world: dict[str, Any]
) -> None:
    for path in ("/messenger/%2E%2E", "/%2E%2E/existing", "/messenger/%00"):
        r = client.post(
            f"{EA}{path}/applications", json={"application": world["app"]}, headers=alice.headers
        )
        assert_clean_4xx(r, 403, "accounts")


def test_long_headers_and_query_strings(client: TestClient, alice: TenantCreds) -> None:
    assert client.get(EA, headers={"Authorization": "Basic " + "A" * 60_000}).status_code == 401
    r = client.get(EA, headers={**alice.headers, "X-Junk": "x" * 60_000})
    assert r.status_code == 200
    r = client.get(f"{EA}?page_size=" + "9" * 5000, headers=alice.headers)
    assert_clean_4xx(r, 400, "accounts")
    r = client.get(f"{APPS}?page=" + "9" * 5000, headers=alice.headers)
    assert_clean_4xx(r, 400, "applications")


def test_nul_in_ids_never_reaches_the_database(
    client: TestClient, alice: TenantCreds, world: dict[str, Any]
) -> None:
    """Found on PostgreSQL (which refuses NUL in strings): an id that breaks the id rules names
    nothing, and is answered without a query."""
    import base64

    from chatapp_accounts.security.keys import generate_rsa_key_pair
    from tests.jwt_tokens import claims, signed

    for method in ("GET", "PUT", "DELETE"):
        r = client.request(method, f"{APPS}/a%00b", json={"name": "x"}, headers=alice.headers)
        assert_clean_4xx(r, 404, "applications")
    r = client.delete(f"{EA}/messenger/existing/applications/a%00b", headers=alice.headers)
    assert_clean_4xx(r, 409, "accounts")
    r = client.patch(f"{EA}/messenger/a%00b", json={"name": "x"}, headers=alice.headers)
    assert_clean_4xx(r, 404, "accounts")
    nul_key = base64.b64encode(b"ab\x00cd:secret").decode()
    assert client.get(EA, headers={"Authorization": f"Basic {nul_key}"}).status_code == 401
    private, _ = generate_rsa_key_pair()
    token = signed(private, claims("app\x00id"))
    assert client.get(EA, headers={"Authorization": f"Bearer {token}"}).status_code == 401


# Bodies that are not a strict JSON object: the Messages API's `invalid-json` (the same strict
# parser as the other APIs: api/bodies.py `strict_object`). The others are JSON objects whose
# fields break the spec's schema: another 422 of the Messages spec.
NOT_STRICT_JSON = {"malformed", "array", "scalar string", "number", "null", "duplicate keys",
                   "deep nesting", "moderately deep nesting", "invalid utf-8", "utf-16",
                   "lone surrogate", "raw control char", "NaN", "huge exponent", "empty",
                   "whitespace"}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_hostile_bodies_on_the_messages_api(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory, case: str
) -> None:
    from chatapp_accounts.storage.tables import messages

    headers = {**alice.headers, "Content-Type": "application/json"}
    raw = HOSTILE_BODIES[case]
    for url in ("/v1/messages", "/sandbox/v1/inbound"):
        r = client.post(url, content=raw, headers=headers)
        assert r.status_code == 422, (url, r.text[:300])
        assert r.headers["content-type"] == "application/json"
        assert "Traceback" not in r.text
        body = r.json()
        assert body["type"].startswith("https://developer.vonage.com/api-errors")
        assert body["instance"] == r.headers["x-request-id"]
        assert body["type"].endswith("#invalid-json") == (case in NOT_STRICT_JSON), (case, body)
        if case == "duplicate keys":
            assert "Duplicate key `external_id`" in body["detail"]
    with uow_factory.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0
