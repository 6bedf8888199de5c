"""Retention and redaction (issue 24, docs/messages.md "Retention", "Redaction"), on both
databases, the stored state asserted: content removed after the content retention in batches,
metadata and counts kept; a scan of every text and binary column of every table finds no
content of an expired message; whole messages deleted after the longer retention; Vonage's
Redact API; a failed webhook redeliverable until its content is removed."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, LargeBinary, String, Text, select, text
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import ConfigError, Settings, settings_from_env
from chatapp_accounts.domain.errors import RedactNotFound, TenantNotFound
from chatapp_accounts.domain.retention import operator_redact
from chatapp_accounts.storage import tables
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, sync

from .helpers import new_application, new_messenger

DAY = 86400.0
REDACT = "/v1/redact/transaction"
PAGE = "page-retention"


@pytest.fixture
def quiet(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The app without its dispatcher: nothing is sent, the test decides what the outbox holds."""
    app = create_app(dataclasses.replace(settings, dispatcher=False), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _inbound(client: TestClient, who: TenantCreds, words: str) -> str:
    r = client.post("/sandbox/v1/inbound", headers=who.headers, json={
        "channel": "messenger", "to": PAGE, "from": "customer-1", "message_type": "text",
        "text": f"text {words}"})  # fmt: skip
    assert r.status_code == 202, r.text
    return str(r.json()["message_uuid"])


def _send(client: TestClient, who: TenantCreds, words: str) -> str:
    r = client.post("/v1/messages", headers=who.headers, json={
        "channel": "messenger", "to": "customer-1", "from": PAGE, "message_type": "image",
        "image": {"url": f"https://media.example/{words}.png", "caption": f"caption {words}"},
        "client_ref": f"ref {words}"})  # fmt: skip
    assert r.status_code == 202, r.text
    return str(r.json()["message_uuid"])


def _world(client: TestClient, who: TenantCreds) -> None:
    new_messenger(client, who, PAGE, applications=[new_application(client, who)["id"]])


def _taken(engine: Engine, uuid: str) -> None:
    """Its send job done, as when its channel took it (the tests run no sender)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE send_jobs SET state = 'done' WHERE message_pk = "
                 "(SELECT pk FROM messages WHERE uuid = :uuid)"), {"uuid": uuid},
        )  # fmt: skip


def _age(engine: Engine, uuid: str, days: float) -> None:
    """Make the message (and what is stored of its webhooks) `days` old, sent if outbound,
    each webhook with a failed attempt whose stored request and answer echo its words."""
    _taken(engine, uuid)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE messages SET created_at = :at WHERE uuid = :uuid"),
            {"at": time.time() - days * DAY, "uuid": uuid},
        )
        pk, tenant, content = conn.execute(
            text("SELECT pk, tenant_id, content FROM messages WHERE uuid = :uuid"), {"uuid": uuid}
        ).one()
        for (webhook,) in conn.execute(
            text("SELECT pk FROM webhooks WHERE message_pk = :pk"), {"pk": pk}
        ).all():
            conn.execute(
                text(
                    "INSERT INTO webhook_attempts (tenant_id, webhook_pk, at, url, status_code, "
                    "error, request_headers, answer, latency) VALUES (:t, :w, :at, :url, 500, "
                    "'HTTP 500', :headers, :answer, 0.01)"
                ),
                {"t": tenant, "w": webhook, "at": time.time(), "url": "https://example.com/x",
                 "headers": json.dumps({"X-Echo": content}), "answer": f"echo {content}"},
            )  # fmt: skip


def _content(engine: Engine, uuid: str) -> dict[str, Any]:
    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT content FROM messages WHERE uuid = :uuid"), {"uuid": uuid}
        ).scalar_one()
    found: dict[str, Any] = json.loads(raw)
    return found


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
            for table in ("messages", "message_statuses", "webhooks", "webhook_attempts")
        }


def _remove(factory: SqlUnitOfWorkFactory, days: float, limit: int) -> list[int]:
    """Content removal as the dispatcher runs it: batches of `limit` until one is short."""
    done = []

    async def run() -> None:
        while True:
            async with factory(write=True) as uow:
                n = await factory.outbox.remove_content(
                    uow.conn, time.time() - days * DAY, limit, time.time()
                )
                await uow.commit()
            done.append(n)
            if n < limit:
                return

    sync(run())
    return done


def _scan(engine: Engine) -> str:
    """Every text and binary value of every table, as one string (but rate_windows': the
    limits' counts, no content, changing with every request)."""
    values: list[str] = []
    with engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name == "rate_windows":
                continue
            columns = [c for c in table.columns if isinstance(c.type, (String, Text, LargeBinary))]
            if not columns:
                continue
            for row in conn.execute(select(*columns)).all():
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    if value is not None:
                        values.append(str(value))
    return "\n".join(values)


def test_content_removed_in_batches_metadata_and_counts_kept(
    quiet: TestClient, engine: Engine, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds
) -> None:
    _world(quiet, alice)
    old = [_inbound(quiet, alice, f"old-in-{i}") for i in range(3)]
    old.append(_send(quiet, alice, "old-out"))
    new = _inbound(quiet, alice, "fresh")
    for uuid in old:
        _age(engine, uuid, 8)
    before = _counts(engine)
    statuses = quiet.get("/sandbox/v1/messages", headers=alice.headers).json()

    assert _remove(uow_factory, 7, 3) == [3, 1]

    for uuid in old:
        assert _content(engine, uuid) == {"redacted": True}
    assert _content(engine, new)["text"] == "text fresh"
    assert _counts(engine) == before  # metadata and counts stay
    after = quiet.get("/sandbox/v1/messages", headers=alice.headers).json()
    assert after["total_items"] == statuses["total_items"] == 5
    listed = {m["message_uuid"]: m for m in after["_embedded"]["messages"]}
    earlier = {m["message_uuid"]: m for m in statuses["_embedded"]["messages"]}
    for uuid in old:
        assert listed[uuid]["channel"] == "messenger"
        assert listed[uuid]["message_type"] == earlier[uuid]["message_type"]
        assert listed[uuid]["statuses"] == earlier[uuid]["statuses"]
    with engine.connect() as conn:
        removed = conn.execute(
            text("SELECT COUNT(*) FROM messages WHERE content_removed_at IS NOT NULL")
        ).scalar_one()
        assert removed == 4
        assert conn.execute(
            text("SELECT COUNT(*) FROM webhook_attempts WHERE answer IS NOT NULL")
        ).scalar_one() == 0  # fmt: skip
    assert _remove(uow_factory, 7, 3) == [0]  # nothing due: the redacted are not read again
    queued = _send(quiet, alice, "queued")
    with engine.begin() as conn:
        conn.execute(text("UPDATE messages SET created_at = created_at - 8 * 86400 "
                          "WHERE uuid = :uuid"), {"uuid": queued})  # fmt: skip
    assert _remove(uow_factory, 7, 3) == [0]  # its channel has not taken it yet
    assert _content(engine, queued)["image"]["caption"] == "caption queued"
    _taken(engine, queued)
    assert _remove(uow_factory, 7, 3) == [1]


def test_no_content_of_an_expired_message_remains_anywhere(
    quiet: TestClient, engine: Engine, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds
) -> None:
    _world(quiet, alice)
    expired = {_inbound(quiet, alice, "secretword-in"): "secretword-in",
               _send(quiet, alice, "secretword-out"): "secretword-out"}  # fmt: skip
    kept = _inbound(quiet, alice, "keptword")
    for uuid in expired:
        _age(engine, uuid, 30)
    _age(engine, kept, 1)
    before = _scan(engine)
    assert "secretword-in" in before and "secretword-out" in before  # the scan sees them

    _remove(uow_factory, 7, 1000)

    after = _scan(engine)
    assert "secretword" not in after
    assert "keptword" in after
    for uuid in expired:
        assert uuid in after  # the metadata


def test_whole_messages_deleted_after_the_longer_retention(
    quiet: TestClient, engine: Engine, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds
) -> None:
    _world(quiet, alice)
    ancient, month = _inbound(quiet, alice, "ancient"), _inbound(quiet, alice, "month")
    _age(engine, ancient, 91)
    _age(engine, month, 30)
    _remove(uow_factory, 7, 1000)

    async def prune() -> int:
        async with uow_factory(write=True) as uow:
            n = await uow_factory.outbox.prune(uow.conn, time.time() - 90 * DAY, 1000)
            await uow.commit()
        return n

    assert sync(prune()) == 1
    with engine.connect() as conn:
        left = [r[0] for r in conn.execute(text("SELECT uuid FROM messages")).all()]
        orphans = conn.execute(
            text("SELECT COUNT(*) FROM webhooks WHERE message_pk NOT IN (SELECT pk FROM messages)")
        ).scalar_one()
    assert left == [month] and orphans == 0
    assert _content(engine, month) == {"redacted": True}


def _redact(client: TestClient, who: TenantCreds | None, body: Any) -> Any:
    headers = who.headers if who is not None else {}
    return client.post(REDACT, headers=headers, json=body)


def test_redact_api(
    quiet: TestClient, engine: Engine, alice: TenantCreds, bob: TenantCreds
) -> None:
    _world(quiet, alice)
    inbound, outbound = _inbound(quiet, alice, "redact-in"), _send(quiet, alice, "redact-out")
    scan = _scan(engine)

    for body, name in (
        ({"product": "messages"}, "id"),
        ({"id": inbound}, "product"),
        ({"id": inbound, "product": "nope"}, "product"),
        ({"id": inbound, "product": "messages", "type": "sideways"}, "type"),
        ({"id": 5, "product": "messages"}, "id"),
        ([inbound], "body"),
    ):
        r = _redact(quiet, alice, body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["invalid_parameters"][0]["name"] == name
    r = quiet.post(REDACT, headers={**alice.headers, "Content-Type": "application/json"},
                   content=b"{nope")  # fmt: skip
    assert r.status_code == 422
    r = _redact(quiet, alice, {"id": inbound, "product": "sms"})
    assert r.status_code == 403 and "Unsupported product" in r.json()["title"]
    r = _redact(quiet, None, {"id": inbound, "product": "messages"})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    r = quiet.post(REDACT, headers={"Authorization": "Bearer x.y.z"},
                   json={"id": inbound, "product": "messages"})  # fmt: skip
    assert r.status_code == 401  # Basic only, as Vonage's
    for who, uuid in ((alice, "0b7a5e2c-6f0f-4d7e-9d0a-7f1e2d3c4b5a"), (bob, inbound),
                      (alice, "not a uuid")):  # fmt: skip
        r = _redact(quiet, who, {"id": uuid, "product": "messages"})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "No message found with that ID"
    r = _redact(quiet, alice, {"id": inbound, "product": "messages", "type": "outbound"})
    assert r.status_code == 404  # it went the other way
    assert _scan(engine) == scan  # nothing changed

    r = _redact(quiet, alice, {"id": inbound, "product": "messages", "type": "inbound"})
    assert r.status_code == 204 and r.content == b""
    assert _content(engine, inbound) == {"redacted": True}
    assert "redact-in" not in _scan(engine)
    assert "redact-out" in _scan(engine)
    assert _redact(quiet, alice, {"id": inbound, "product": "messages"}).status_code == 204
    r = _redact(quiet, alice, {"id": outbound, "product": "messages"})
    assert r.status_code == 403 and r.json()["title"] == "Premature redaction"  # still queued
    assert "redact-out" in _scan(engine)
    _taken(engine, outbound)
    assert _redact(quiet, alice, {"id": outbound, "product": "messages"}).status_code == 204
    assert "redact-" not in _scan(engine)
    listed = quiet.get("/sandbox/v1/messages", headers=alice.headers).json()
    assert listed["total_items"] == 2


def test_operator_redact(
    quiet: TestClient, engine: Engine, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds,
    bob: TenantCreds,
) -> None:  # fmt: skip
    _world(quiet, alice)
    uuid = _inbound(quiet, alice, "operator-word")
    with pytest.raises(RedactNotFound):
        sync(operator_redact(uow_factory, bob.api_key, uuid))
    with pytest.raises(TenantNotFound):
        sync(operator_redact(uow_factory, "nobody", uuid))
    assert "operator-word" in _scan(engine)
    sync(operator_redact(uow_factory, None, uuid))
    assert "operator-word" not in _scan(engine)


def test_failed_webhook_redeliverable_until_its_content_is_removed(
    quiet: TestClient, engine: Engine, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds
) -> None:
    _world(quiet, alice)
    first, second = _inbound(quiet, alice, "hook-1"), _inbound(quiet, alice, "hook-2")
    with engine.begin() as conn:
        conn.execute(text("UPDATE webhooks SET state = 'failed'"))
        hooks = dict(
            conn.execute(
                text("SELECT m.uuid, w.pk FROM webhooks w JOIN messages m ON m.pk = w.message_pk")
            ).all()
        )
    _age(engine, first, 6)
    _age(engine, second, 8)
    _remove(uow_factory, 7, 1000)

    path = "/sandbox/v1/webhooks/{}/redeliver"
    r = quiet.post(path.format(hooks[first]), headers=alice.headers)
    assert r.status_code < 300, r.text
    r = quiet.post(path.format(hooks[second]), headers=alice.headers)
    assert r.status_code == 410, r.text
    assert "content was removed" in r.json()["detail"]
    r = quiet.post(f"/sandbox/v1/webhooks/{hooks[second]}/resend", headers=alice.headers,
                   json={"edited": True})  # fmt: skip
    assert r.status_code == 410, r.text
    with engine.connect() as conn:
        states = dict(
            conn.execute(
                text(
                    "SELECT m.uuid, w.state FROM webhooks w JOIN messages m ON m.pk = w.message_pk"
                )
            ).all()
        )
    assert states == {first: "pending", second: "failed"}


def test_retention_settings() -> None:
    defaults = settings_from_env({})
    assert (defaults.message_content_retention_days, defaults.message_retention_days) == (7, 90)
    both = settings_from_env({"CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS": "1",
                              "CHATAPP_MESSAGE_RETENTION_DAYS": "1"})  # fmt: skip
    assert both.message_content_retention_days == both.message_retention_days == 1
    with pytest.raises(ConfigError, match="CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS"):
        settings_from_env({"CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS": "30",
                           "CHATAPP_MESSAGE_RETENTION_DAYS": "10"})  # fmt: skip


def test_the_inbox_shows_a_redacted_message_and_webhook(
    quiet: TestClient, engine: Engine, alice: TenantCreds
) -> None:
    from .test_inbox import sign_in

    _world(quiet, alice)
    uuid = _inbound(quiet, alice, "inbox-word")
    assert _redact(quiet, alice, {"id": uuid, "product": "messages"}).status_code == 204
    hooks = quiet.get("/sandbox/v1/messages", headers=alice.headers).json()
    webhook_id = hooks["_embedded"]["messages"][0]["webhooks"][0]["id"]
    sign_in(quiet, alice)
    for url in (
        "/inbox",
        f"/inbox/messages/{uuid}",
        "/inbox/sidebar",
        f"/inbox/webhooks/{webhook_id}",
    ):
        page = quiet.get(url)
        assert page.status_code == 200, (url, page.text)
        assert "inbox-word" not in page.text
    assert "content removed" in quiet.get(f"/inbox/messages/{uuid}").text


def test_the_dispatcher_removes_content_then_deletes_on_its_own(
    quiet: TestClient, settings: Settings, engine: Engine, alice: TenantCreds
) -> None:
    """The housekeeping's first turn, at start-up: both steps, with the configured periods."""
    _world(quiet, alice)
    week, season, fresh = (_inbound(quiet, alice, w) for w in ("week-old", "season-old", "fresh"))
    _age(engine, week, 8)
    _age(engine, season, 91)
    running = dataclasses.replace(settings, message_content_retention_days=7,
                                  message_retention_days=90)  # fmt: skip
    with TestClient(create_app(running, engine=engine)):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                left = dict(conn.execute(text("SELECT uuid, content FROM messages")).all())
            if season not in left and json.loads(left[week]) == {"redacted": True}:
                break
            time.sleep(0.05)
    assert set(left) == {week, fresh}
    assert json.loads(left[week]) == {"redacted": True}
    assert json.loads(left[fresh])["text"] == "text fresh"
