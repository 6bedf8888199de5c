"""Messenger accounts: create, get, patch, delete, with each documented error."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from chatapp_accounts.domain.ports import UnitOfWork
from chatapp_accounts.storage.tables import accounts
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, read, sync

from .helpers import EA, assert_error, new_application, new_messenger


def count_accounts(uow_factory: SqlUnitOfWorkFactory) -> int:
    async def count(uow: UnitOfWork) -> int:
        return await uow.accounts.count(1, None) + await uow.accounts.count(2, None)

    return sync(read(uow_factory, count))


def test_create_returns_the_account(client: TestClient, alice: TenantCreds) -> None:
    app = new_application(client, alice)
    r = client.post(
        f"{EA}/messenger",
        json={
            "external_id": "1234",
            "access_token": "tok",
            "name": "Page",
            "applications": [app["id"]],
        },
        headers=alice.headers,
    )
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "external_id": "1234",
        "api_key": alice.api_key,
        "provider": "messenger",
        "name": "Page",
        "applications": [app["id"]],
        "access_token": "tok",
    }


def test_create_without_optional_fields_has_empty_applications(
    client: TestClient, alice: TenantCreds
) -> None:
    body = new_messenger(client, alice, "p1")
    assert body["applications"] == []
    assert "name" not in body


def test_get_returns_what_was_created(client: TestClient, alice: TenantCreds) -> None:
    created = new_messenger(client, alice, "page.1", name="n")
    r = client.get(f"{EA}/messenger/page.1", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == created


def test_get_missing_is_404_with_error_body(client: TestClient, alice: TenantCreds) -> None:
    body = assert_error(
        client.get(f"{EA}/messenger/nope", headers=alice.headers), 404, type_suffix="#NotFound"
    )
    assert body["title"] == "Not Found"


def test_create_validation_lists_every_bad_field(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    r = client.post(
        f"{EA}/messenger",
        json={
            "external_id": "-bad id",
            "access_token": 5,
            "name": "x" * 256,
            "applications": ["a", "b"],
        },
        headers=alice.headers,
    )
    body = assert_error(r, 400, type_suffix="#InvalidParams")
    assert body["title"] == "Your request parameters didn't validate."
    assert body["detail"] == "Found errors validating 4 of your submitted parameters."
    assert {p["name"] for p in body["invalid_params"]} == {
        "external_id",
        "access_token",
        "name",
        "applications",
    }
    assert count_accounts(uow_factory) == 0


def test_create_missing_required_fields(client: TestClient, alice: TenantCreds) -> None:
    body = assert_error(client.post(f"{EA}/messenger", json={}, headers=alice.headers), 400)
    assert body["invalid_params"] == [
        {"name": "external_id", "reason": "Missing `external_id` field"},
        {"name": "access_token", "reason": "Missing `access_token` field"},
    ]


def test_control_characters_and_bounds_are_400(client: TestClient, alice: TenantCreds) -> None:
    for payload, field in [
        ({"external_id": "ok", "access_token": "a\u0000b"}, "access_token"),
        ({"external_id": "ok", "access_token": "t", "name": "tab\there"}, "name"),
        ({"external_id": "ok", "access_token": "t", "name": "c1\u0085"}, "name"),
        ({"external_id": "x" * 101, "access_token": "t"}, "external_id"),
        ({"external_id": "a/b", "access_token": "t"}, "external_id"),
        ({"external_id": "ok", "access_token": "t" * 4097}, "access_token"),
        ({"external_id": "ok", "access_token": ""}, "access_token"),
    ]:
        body = assert_error(
            client.post(f"{EA}/messenger", json=payload, headers=alice.headers), 400
        )
        assert [p["name"] for p in body["invalid_params"]] == [field], payload


def test_malformed_and_non_object_bodies_are_400(client: TestClient, alice: TenantCreds) -> None:
    headers = {**alice.headers, "Content-Type": "application/json"}
    for raw in (b"{", b"[]", b"42", b'"s"', b"", b"\xff\xfe"):
        body = assert_error(client.post(f"{EA}/messenger", content=raw, headers=headers), 400)
        assert body["invalid_params"][0]["name"] == "body"


def test_wrong_content_type_is_415(client: TestClient, alice: TenantCreds) -> None:
    r = client.post(
        f"{EA}/messenger",
        content=b"external_id=1",
        headers={**alice.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(r, 415, type_suffix="#UnsupportedMediaType")


def test_duplicate_page_is_403_saying_whose(
    client: TestClient, alice: TenantCreds, bob: TenantCreds
) -> None:
    new_messenger(client, alice, "555")
    mine = client.post(
        f"{EA}/messenger", json={"external_id": "555", "access_token": "t"}, headers=alice.headers
    )
    assert_error(
        mine, 403, detail="The messenger account '555' is already registered to your account"
    )
    theirs = client.post(
        f"{EA}/messenger", json={"external_id": "555", "access_token": "t"}, headers=bob.headers
    )
    assert_error(
        theirs, 403, detail="The messenger account '555' is already registered to another account"
    )
    # Nothing changed: the account is still Alice's, with her token.
    r = client.get(f"{EA}/messenger/555", headers=alice.headers)
    assert r.json()["access_token"] == "token-555"


def test_create_with_unlinkable_application_is_403_and_writes_nothing(
    client: TestClient, alice: TenantCreds, bob: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    voice_only = new_application(client, alice, messages=False)
    bobs = new_application(client, bob)
    for app_id in (voice_only["id"], bobs["id"], "no-such-app"):
        r = client.post(
            f"{EA}/messenger",
            json={"external_id": "77", "access_token": "t", "applications": [app_id]},
            headers=alice.headers,
        )
        assert_error(r, 403, detail="Cannot link application", type_suffix="#Forbidden")
    assert count_accounts(uow_factory) == 0


def test_patch_changes_name_token_and_link(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "42", name="old")
    app = new_application(client, alice)
    r = client.patch(
        f"{EA}/messenger/42",
        json={"name": "new", "access_token": "fresh", "applications": [app["id"]], "unknown": 1},
        headers=alice.headers,
    )
    assert r.status_code == 200
    assert r.json() == {
        "external_id": "42",
        "api_key": alice.api_key,
        "provider": "messenger",
        "name": "new",
        "applications": [app["id"]],
        "access_token": "fresh",
    }
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json() == r.json()


def test_patch_with_empty_applications_unlinks(client: TestClient, alice: TenantCreds) -> None:
    app = new_application(client, alice)
    new_messenger(client, alice, "42", applications=[app["id"]])
    r = client.patch(f"{EA}/messenger/42", json={"applications": []}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["applications"] == []


def test_patch_replaces_the_linked_application(client: TestClient, alice: TenantCreds) -> None:
    first, second = new_application(client, alice), new_application(client, alice)
    new_messenger(client, alice, "42", applications=[first["id"]])
    r = client.patch(
        f"{EA}/messenger/42", json={"applications": [second["id"]]}, headers=alice.headers
    )
    assert r.json()["applications"] == [second["id"]]


def test_patch_cannot_change_external_id(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "42", name="keep")
    r = client.patch(
        f"{EA}/messenger/42", json={"external_id": "43", "name": "changed"}, headers=alice.headers
    )
    body = assert_error(r, 400)
    assert body["invalid_params"] == [
        {"name": "external_id", "reason": "'external_id' parameter cannot be changed"}
    ]
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json()["name"] == "keep"
    # The same external_id is not a change.
    same = client.patch(f"{EA}/messenger/42", json={"external_id": "42"}, headers=alice.headers)
    assert same.status_code == 200


def test_patch_errors(client: TestClient, alice: TenantCreds) -> None:
    assert_error(
        client.patch(f"{EA}/messenger/none", json={"name": "x"}, headers=alice.headers), 404
    )
    new_messenger(client, alice, "42")
    assert_error(
        client.patch(f"{EA}/messenger/42", json={"applications": ["ghost"]}, headers=alice.headers),
        403,
        detail="Cannot link application",
    )
    assert_error(
        client.patch(
            f"{EA}/messenger/42", json={"applications": ["a", "b"]}, headers=alice.headers
        ),
        400,
    )


def test_delete_then_gone(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "42")
    r = client.delete(f"{EA}/messenger/42", headers=alice.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert_error(client.get(f"{EA}/messenger/42", headers=alice.headers), 404)
    assert_error(client.delete(f"{EA}/messenger/42", headers=alice.headers), 404)
    # The page can be registered again once deleted.
    new_messenger(client, alice, "42")


def test_access_token_is_encrypted_at_rest_and_bound_to_its_row(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    new_messenger(client, alice, "row-a", access_token="secret-token-a")
    new_messenger(client, alice, "row-b", access_token="secret-token-b")
    engine = uow_factory.db.engine
    with engine.begin() as conn:
        stored = dict(conn.execute(select(accounts.c.external_id, accounts.c.access_token)).all())
        assert b"secret-token-a" not in bytes(stored["row-a"])
        # Move row-a's ciphertext into row-b: it must not decrypt there.
        conn.execute(
            accounts.update()
            .where(accounts.c.external_id == "row-b")
            .values(access_token=stored["row-a"])
        )
    r = client.get(f"{EA}/messenger/row-b", headers=alice.headers)
    assert r.status_code == 500
    assert "Traceback" not in r.text and "secret-token" not in r.text
    assert client.get(f"{EA}/messenger/row-a", headers=alice.headers).json()["access_token"] == (
        "secret-token-a"
    )


def test_get_with_json_content_type_and_empty_body_works(
    client: TestClient, alice: TenantCreds
) -> None:
    """Vonage's SDK sends Content-Type: application/json on GET and DELETE with no body."""
    new_messenger(client, alice, "42")
    headers = {**alice.headers, "Content-Type": "application/json"}
    assert client.get(f"{EA}/messenger/42", headers=headers).status_code == 200
    assert client.delete(f"{EA}/messenger/42", headers=headers).status_code == 204


def test_methods_not_allowed_get_405_with_allow(client: TestClient, alice: TenantCreds) -> None:
    r = client.put(f"{EA}/messenger/42", json={}, headers=alice.headers)
    assert_error(r, 405, type_suffix="#MethodNotAllowed")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    r = client.get(f"{EA}/messenger", headers=alice.headers)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"


def test_request_id_is_kept_and_used_as_instance(client: TestClient, alice: TenantCreds) -> None:
    r = client.get(f"{EA}/messenger/x", headers={**alice.headers, "X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert r.json()["instance"] == "abc-123"
