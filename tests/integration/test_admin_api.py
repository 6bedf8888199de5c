"""The admin API (docs/operations.md) on both databases: tenants made, listed, shown,
suspended and resumed (their credentials answer 401 on every API meanwhile), given a new
signature secret and deleted with all their data; admin tokens as Bearer credentials, with
scopes (403 without), never tenant credentials (401) and never working on the tenant APIs;
every change in the audit log with the token's name and the request's id, never a secret."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from chatapp_accounts.api.admin import PREFIX, admin_routes
from chatapp_accounts.api.app import create_app
from chatapp_accounts.api.http import Services
from chatapp_accounts.api.openapi import served_admin_spec_bytes
from chatapp_accounts.config import Settings
from chatapp_accounts.domain import admin, webhooks
from chatapp_accounts.domain.models import Redelivered
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


@pytest.fixture
def quiet(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The app with no dispatcher: the outbox stays as the test leaves it."""
    app = create_app(dataclasses.replace(settings, dispatcher=False), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def inbound_messages(client: TestClient, tenant: TenantCreds, page: str, n: int) -> list[str]:
    """`n` messages a customer sends to a new page of the tenant's (an inbound webhook each):
    their uuids, oldest first."""
    app = new_application(client, tenant)
    made = client.post(f"{EA}/messenger", headers=tenant.headers, json={
        "external_id": page, "access_token": "t", "applications": [app["id"]]})  # fmt: skip
    assert made.status_code == 201, made.text
    uuids = []
    for i in range(n):
        sent = client.post("/sandbox/v1/inbound", headers=tenant.headers, json={
            "channel": "messenger", "to": page, "from": "c-1", "message_type": "text",
            "text": f"hello {i}"})  # fmt: skip
        assert sent.status_code == 202, sent.text
        uuids.append(sent.json()["message_uuid"])
    return uuids


def outbox_rows(engine: Engine) -> dict[str, tuple[str, int, float | None]]:
    """Each webhook's (state, attempts, first_attempt_at), by id."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT pk, state, attempts, first_attempt_at FROM webhooks"))
        return {str(pk): (state, attempts, first) for pk, state, attempts, first in rows}


def fail(engine: Engine, ids: list[str], created_at: float | None = None) -> None:
    """The webhooks failed (three attempts, an hour ago), made at `created_at` if given."""
    with engine.begin() as conn:
        for webhook_id in ids:
            conn.execute(text(
                "UPDATE webhooks SET state = 'failed', attempts = 3, first_attempt_at = :at, "
                "created_at = COALESCE(:made, created_at) WHERE pk = :pk"
            ), {"at": time.time() - 3600, "made": created_at, "pk": int(webhook_id)})  # fmt: skip


def test_the_outbox_filtered_by_tenant_and_age(
    quiet: TestClient, alice: TenantCreds, bob: TenantCreds, root: dict[str, str],
    engine: Engine,
) -> None:  # fmt: skip
    client, hooks = quiet, PREFIX + "/webhooks"
    alices = inbound_messages(client, alice, "page-a", 3)
    bobs = inbound_messages(client, bob, "page-b", 2)

    def listed(**params: str) -> list[dict[str, Any]]:
        answer = client.get(hooks, headers=root, params=params)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["webhooks"]
        return found

    mine = listed(tenant=alice.api_key)
    assert [h["message_uuid"] for h in mine] == alices[::-1]  # newest first
    assert {h["api_key"] for h in mine} == {alice.api_key}
    ids = [h["id"] for h in mine][::-1]  # oldest first
    assert [h["message_uuid"] for h in listed(tenant=bob.api_key)] == bobs[::-1]
    assert listed(tenant="nobody") == []

    fail(engine, ids[:1], created_at=datetime(2020, 1, 1, tzinfo=UTC).timestamp())
    fail(engine, ids[1:2])
    assert [h["id"] for h in listed(tenant=alice.api_key, state="failed")] == ids[1::-1]
    assert [h["id"] for h in listed(until="2021-01-01")] == ids[:1]
    assert [h["id"] for h in listed(tenant=alice.api_key, since="2021-01-01T00:00:00Z")] == (
        ids[:0:-1]
    )
    assert listed(tenant=bob.api_key, state="failed") == []
    assert len(listed(limit="2")) == 2

    before = outbox_rows(engine)
    for params, names in (({"since": "soon"}, ["since"]), ({"tenant": "k" * 33}, ["tenant"]),
                          ({"until": "2026-13-01", "state": "lost"}, ["until", "state"]),
                          ({"limit": "1001"}, ["limit"]), ({"api_key": "x"}, ["api_key"])):  # fmt: skip
        body = problem(client.get(hooks, headers=root, params=params), 400, "invalid")
        assert sorted(p["name"] for p in body["invalid_parameters"]) == sorted(names)
    assert outbox_rows(engine) == before


def test_every_failed_webhook_redelivered(
    quiet: TestClient, alice: TenantCreds, bob: TenantCreds, root: dict[str, str],
    engine: Engine, uow_factory: SqlUnitOfWorkFactory,
) -> None:  # fmt: skip
    client, redeliver = quiet, PREFIX + "/webhooks/redeliver"
    alices = inbound_messages(client, alice, "page-a", 3)
    inbound_messages(client, bob, "page-b", 2)
    ids = {h["message_uuid"]: h["id"] for h in client.get(
        PREFIX + "/webhooks", headers=root).json()["webhooks"]}  # fmt: skip
    a = [ids[uuid] for uuid in alices]
    b = sorted(set(ids.values()) - set(a), key=int)
    fail(engine, [*a, *b])
    gone = client.post(f"{TENANTS}/{alice.api_key}/messages/{alices[1]}/redact", headers=root)
    assert gone.status_code == 204, gone.text
    problem(client.post(f"{PREFIX}/webhooks/{a[1]}/redeliver", headers=root), 410, "gone")

    reader = token(uow_factory, "reader", "read")
    problem(client.post(redeliver, headers=reader), 403, "forbidden")
    before = outbox_rows(engine)
    for params, name in (({"since": "soon"}, "since"), ({"state": "failed"}, "state"),
                         ({"tenant": ""}, "tenant")):  # fmt: skip
        body = problem(client.post(redeliver, headers=root, params=params), 400, "invalid")
        assert [p["name"] for p in body["invalid_parameters"]] == [name]
    assert outbox_rows(engine) == before

    done = client.post(redeliver, headers=root, params={"tenant": alice.api_key})
    assert done.status_code == 200, done.text
    assert done.json() == {"redelivered": 2, "skipped_content_removed": 1}
    rows = outbox_rows(engine)
    assert [rows[i] for i in a] == [("pending", 0, None), before[a[1]], ("pending", 0, None)]
    assert [rows[i] for i in b] == [before[i] for i in b]  # bob's: untouched

    # A time range, then everything left: bob's, in batches of one (alice's redacted one is
    # skipped again, never sent).
    assert client.post(redeliver, headers=root, params={"until": "2020-01-01"}).json() == {
        "redelivered": 0, "skipped_content_removed": 0}  # fmt: skip
    done_all = sync(webhooks.redeliver_failed(uow_factory, batch=1))
    assert done_all == Redelivered(redelivered=2, skipped=1)
    rows = outbox_rows(engine)
    assert [rows[i][0] for i in [*a, *b]] == ["pending", "failed", "pending", "pending", "pending"]

    entries = client.get(f"{PREFIX}/audit", headers=root, params={"actor": "root"}).json()
    lines = [(e["action"], e["tenant"], e["outcome"]) for e in entries["entries"]
             if e["action"].startswith("webhooks.")]  # fmt: skip
    assert lines == [
        ("webhooks.redeliver", None, f"error: ContentRemoved: {lines[0][2].split(': ', 2)[2]}"),
        ("webhooks.redeliver-failed", None, "error: InvalidInput: since: an ISO 8601 time"),
        (
            "webhooks.redeliver-failed",
            None,
            "error: InvalidInput: state: not a parameter of this request",
        ),
        ("webhooks.redeliver-failed", None, "error: InvalidInput: tenant: an api_key"),
        (
            "webhooks.redeliver-failed",
            alice.api_key,
            "ok: 2 redelivered, 1 skipped (content removed)",
        ),
        ("webhooks.redeliver-failed", None, "ok: 0 redelivered, 0 skipped (content removed)"),
    ]
    one = client.post(f"{PREFIX}/webhooks/{b[0]}/redeliver", headers=root)
    assert one.json() == {"id": b[0], "state": "pending"}
    last = client.get(f"{PREFIX}/audit", headers=root, params={"tenant": bob.api_key}).json()
    assert [(e["action"], e["outcome"]) for e in last["entries"]] == [("webhooks.redeliver", "ok")]
