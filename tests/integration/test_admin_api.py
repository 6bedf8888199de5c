"""The admin API (docs/operations.md) on both databases: tenants made, listed, shown,
suspended and resumed (their credentials answer 401 on every API meanwhile), given a new
signature secret and deleted with all their data; admin tokens as Bearer credentials, with
scopes (403 without), never tenant credentials (401) and never working on the tenant APIs;
every change in the audit log with the token's name and the request's id, never a secret."""

from __future__ import annotations

import hashlib
import json

from starlette.testclient import TestClient

from chatapp_accounts.api.admin import PREFIX, admin_routes
from chatapp_accounts.api.http import Services
from chatapp_accounts.api.openapi import served_admin_spec_bytes
from chatapp_accounts.config import Settings
from chatapp_accounts.domain import admin
from chatapp_accounts.security.service import SecurityService
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, read, sync
from tests.jwt_tokens import sdk_token

from .helpers import APPS, EA, new_application, problem, served_and_documented, token

TENANTS = PREFIX + "/tenants"


def basic(api_key: str, api_secret: str) -> dict[str, str]:
    return TenantCreds(api_key, api_secret, None).headers  # type: ignore[arg-type]


def tenant_count(uow_factory: SqlUnitOfWorkFactory) -> int:
    return sync(read(uow_factory, lambda uow: uow.tenants.count()))


def test_a_tenants_life_through_the_admin_api(
    client: TestClient, uow_factory: SqlUnitOfWorkFactory, root: dict[str, str]
) -> None:
    made = client.post(TENANTS, headers=root)
    assert made.status_code == 201, made.text
    new = made.json()
    assert set(new) == {"api_key", "api_secret", "signature_secret"}
    key, its = new["api_key"], basic(new["api_key"], new["api_secret"])
    assert client.get(APPS, headers=its).status_code == 200

    listed = client.get(TENANTS, headers=root).json()["tenants"]
    assert {"api_key": key, "suspended": False} in [
        {k: t[k] for k in ("api_key", "suspended")} for t in listed
    ]
    shown = client.get(f"{TENANTS}/{key}", headers=root)
    assert shown.status_code == 200 and shown.json()["suspended"] is False
    assert new["api_secret"] not in shown.text + json.dumps(listed)

    suspended = client.post(f"{TENANTS}/{key}/suspend", headers=root)
    assert suspended.status_code == 200 and suspended.json()["suspended"] is True
    assert client.get(APPS, headers=its).status_code == 401
    assert client.get(f"{EA}", headers=its).status_code == 401
    assert client.get("/sandbox/v1/messages", headers=its).status_code == 401
    resumed = client.post(f"{TENANTS}/{key}/resume", headers=root)
    assert resumed.status_code == 200 and resumed.json()["suspended"] is False
    assert client.get(APPS, headers=its).status_code == 200

    replaced = client.post(f"{TENANTS}/{key}/signature-secret", headers=root)
    assert replaced.status_code == 200
    secret = replaced.json()["signature_secret"]
    assert secret != new["signature_secret"]
    stored = sync(read(uow_factory, lambda uow: uow.tenants.signature_secret(key)))
    assert stored == secret

    app = new_application(client, TenantCreds(key, new["api_secret"], None))  # type: ignore[arg-type]
    gone = client.delete(f"{TENANTS}/{key}", headers=root)
    assert gone.status_code == 204
    assert sync(read(uow_factory, lambda uow: uow.tenants.by_api_key(key))) is None
    assert sync(read(uow_factory, lambda uow: uow.applications.signing_key(app["id"]))) is None
    problem(client.get(f"{TENANTS}/{key}", headers=root), 404, "not-found")
    problem(client.delete(f"{TENANTS}/{key}", headers=root), 404, "not-found")
    assert client.get(APPS, headers=its).status_code == 401

    entries = client.get(f"{PREFIX}/audit", params={"tenant": key}, headers=root).json()["entries"]
    assert [(e["actor"], e["action"], e["outcome"]) for e in entries] == [
        ("root", "tenants.create", "ok"),
        ("root", "tenants.suspend", "ok"),
        ("root", "tenants.resume", "ok"),
        ("root", "tenants.signature-secret", "ok"),
        ("root", "tenants.delete", "ok"),
        ("root", "tenants.delete", f"error: TenantNotFound: no tenant with api_key '{key}'"),
    ]
    assert entries[0]["request_id"] == made.headers["x-request-id"]
    everything = json.dumps(client.get(f"{PREFIX}/audit", headers=root).json())
    for secret_value in (new["api_secret"], new["signature_secret"], secret):
        assert secret_value not in everything


def test_admin_tokens_are_stored_hashed(uow_factory: SqlUnitOfWorkFactory) -> None:
    made = sync(admin.create_admin_token(uow_factory, SecurityService(), "ops", ["read"]))
    digest = hashlib.sha256(made.token.encode()).hexdigest()
    found = sync(read(uow_factory, lambda uow: uow.admin_tokens.by_hash(digest)))
    assert found is not None and found.name == "ops" and found.scopes == ("read",)
    assert sync(read(uow_factory, lambda uow: uow.admin_tokens.by_hash(made.token))) is None


def test_who_may_call_it(
    client: TestClient,
    uow_factory: SqlUnitOfWorkFactory,
    root: dict[str, str],
    alice: TenantCreds,
) -> None:
    reader = token(uow_factory, "reader", "read")
    accounts_only = token(uow_factory, "acc", "accounts:write")
    before = tenant_count(uow_factory)

    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Token x"}, alice.headers):  # fmt: skip
        body = problem(client.get(TENANTS, headers=headers), 401, "unauthorized")
        assert client.get(TENANTS, headers=headers).headers["www-authenticate"].startswith("Bearer")
        assert "Bearer" in body["detail"]
    problem(client.post(TENANTS, headers=reader), 403, "forbidden")
    problem(client.post(f"{TENANTS}/{alice.api_key}/suspend", headers=reader), 403, "forbidden")
    problem(client.get(TENANTS, headers=accounts_only), 403, "forbidden")
    assert client.get(TENANTS, headers=reader).status_code == 200
    assert tenant_count(uow_factory) == before
    record = sync(read(uow_factory, lambda uow: uow.tenants.by_api_key(alice.api_key)))
    assert record is not None and not record.revoked

    # An application's JWT is no admin token either.
    app = new_application(client, alice)
    jwt = sdk_token(app["id"], app["keys"]["private_key"])
    problem(client.get(TENANTS, headers={"Authorization": f"Bearer {jwt}"}), 401, "unauthorized")

    # Nor is an admin token a tenant's credential.
    for path in (APPS, EA, "/v1/messages", "/sandbox/v1/messages"):
        assert client.get(path, headers=root).status_code in (401, 405), path
    assert client.get(APPS, headers=root).status_code == 401
    assert client.get("/sandbox/v1/messages", headers=root).status_code == 401

    sync(admin.revoke_admin_token(uow_factory, "reader"))
    problem(client.get(TENANTS, headers=reader), 401, "unauthorized")


def test_the_audit_log_filters_and_refuses_bad_queries(
    client: TestClient, uow_factory: SqlUnitOfWorkFactory, root: dict[str, str]
) -> None:
    other = token(uow_factory, "other", "tenants:write", "read")
    first = client.post(TENANTS, headers=root).json()["api_key"]
    second = client.post(TENANTS, headers=other).json()["api_key"]
    audit = PREFIX + "/audit"

    by_other = client.get(audit, params={"actor": "other"}, headers=root).json()["entries"]
    assert [(e["action"], e["tenant"]) for e in by_other] == [("tenants.create", second)]
    by_tenant = client.get(audit, params={"tenant": first}, headers=root).json()["entries"]
    assert [e["actor"] for e in by_tenant] == ["root"]
    at = by_other[0]["at"]
    since = client.get(audit, params={"since": at, "actor": "root"}, headers=root).json()
    assert since["entries"] == []
    until = client.get(audit, params={"until": at, "actor": "other"}, headers=root).json()
    assert until["entries"] == []
    assert len(client.get(audit, params={"limit": "1"}, headers=root).json()["entries"]) == 1

    count = len(client.get(audit, headers=root).json()["entries"])
    for params, name in (({"since": "yesterday"}, "since"), ({"limit": "0"}, "limit"),
                         ({"limit": "x"}, "limit"), ({"colour": "red"}, "colour"),
                         ({"until": "2026-13-01"}, "until")):  # fmt: skip
        body = problem(client.get(audit, params=params, headers=root), 400, "invalid")
        assert [p["name"] for p in body["invalid_parameters"]] == [name]
    assert len(client.get(audit, headers=root).json()["entries"]) == count


def test_the_served_spec_has_the_admin_routes_and_docs_list_it(
    client: TestClient, settings: Settings, uow_factory: SqlUnitOfWorkFactory
) -> None:
    services = Services(settings, uow_factory, SecurityService())
    served, documented = served_and_documented(admin_routes(services), served_admin_spec_bytes())
    assert served == documented
    answer = client.get(PREFIX + "/openapi.json")
    assert answer.status_code == 200 and answer.json()["info"]["title"].endswith("admin API")
    assert PREFIX + "/openapi.json" in client.get("/docs/init.js").text


def test_an_operator_redacts_a_tenants_message(
    client: TestClient, alice: TenantCreds, bob: TenantCreds, root: dict[str, str],
    uow_factory: SqlUnitOfWorkFactory,
) -> None:  # fmt: skip
    app = new_application(client, alice)
    r = client.post(f"{EA}/messenger", headers=alice.headers, json={
        "external_id": "page-r", "access_token": "t", "applications": [app["id"]]})  # fmt: skip
    assert r.status_code == 201, r.text
    sent = client.post("/sandbox/v1/inbound", headers=alice.headers, json={
        "channel": "messenger", "to": "page-r", "from": "c-1", "message_type": "text",
        "text": "a secret recipe"})  # fmt: skip
    uuid = sent.json()["message_uuid"]
    url = f"{TENANTS}/{alice.api_key}/messages/{uuid}/redact"
    reader = token(uow_factory, "reader", "read")
    problem(client.post(url, headers=reader), 403, "forbidden")
    problem(client.post(f"{TENANTS}/{bob.api_key}/messages/{uuid}/redact", headers=root), 404,
            "not-found")  # fmt: skip
    listed = client.get("/sandbox/v1/messages", headers=alice.headers).json()
    assert listed["_embedded"]["messages"][0]["content"]["text"] == "a secret recipe"

    done = client.post(url, headers=root)
    assert done.status_code == 204, done.text
    listed = client.get("/sandbox/v1/messages", headers=alice.headers).json()
    message = listed["_embedded"]["messages"][0]
    assert message["message_uuid"] == uuid and "a secret recipe" not in json.dumps(message)
    entries = client.get(f"{PREFIX}/audit", headers=root, params={"tenant": alice.api_key}).json()
    actions = [(e["action"], e["actor"], e["outcome"]) for e in entries["entries"]]
    assert ("messages.redact", "root", "ok") in actions


def test_the_outbox_listed_and_a_webhook_redelivered(
    client: TestClient, alice: TenantCreds, root: dict[str, str],
    uow_factory: SqlUnitOfWorkFactory,
) -> None:  # fmt: skip
    app = new_application(client, alice)
    made = client.post(f"{EA}/messenger", headers=alice.headers, json={
        "external_id": "page-o", "access_token": "t", "applications": [app["id"]]})  # fmt: skip
    assert made.status_code == 201, made.text
    sent = client.post("/sandbox/v1/inbound", headers=alice.headers, json={
        "channel": "messenger", "to": "page-o", "from": "c-1", "message_type": "text",
        "text": "hello"})  # fmt: skip
    uuid = sent.json()["message_uuid"]
    listed = client.get(f"{PREFIX}/webhooks", headers=root, params={"limit": "10"})
    assert listed.status_code == 200, listed.text
    hooks = [h for h in listed.json()["webhooks"] if h["message_uuid"] == uuid]
    assert len(hooks) == 1 and hooks[0]["kind"] == "inbound"
    assert hooks[0]["url"] == "https://example.com/inbound"
    webhook_id = hooks[0]["id"]
    delivered = client.get(f"{PREFIX}/webhooks", headers=root, params={"state": "delivered"})
    assert webhook_id not in [h["id"] for h in delivered.json()["webhooks"]]
    problem(client.get(f"{PREFIX}/webhooks", headers=root, params={"state": "lost"}), 400,
            "invalid")  # fmt: skip
    problem(client.get(f"{PREFIX}/webhooks", headers=root, params={"limit": "0"}), 400, "invalid")

    reader = token(uow_factory, "reader", "read")
    problem(client.post(f"{PREFIX}/webhooks/{webhook_id}/redeliver", headers=reader), 403,
            "forbidden")  # fmt: skip
    problem(client.post(f"{PREFIX}/webhooks/999999999/redeliver", headers=root), 404, "not-found")
    again = client.post(f"{PREFIX}/webhooks/{webhook_id}/redeliver", headers=root)
    assert again.status_code == 200 and again.json() == {"id": webhook_id, "state": "pending"}
    entries = client.get(f"{PREFIX}/audit", headers=root, params={"actor": "root"}).json()
    actions = [(e["action"], e["outcome"]) for e in entries["entries"]]
    assert ("webhooks.redeliver", "ok") in actions
    assert any(a == "webhooks.redeliver" and o.startswith("error") for a, o in actions)
