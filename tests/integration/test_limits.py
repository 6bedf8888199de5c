"""Per-tenant limits (docs/limits.md) over HTTP, on both databases: past its limit a tenant gets
429 in each API's own shape with X-RateLimit-Limit, -Remaining, -Reset (Unix milliseconds) and
Retry-After, and nothing is done; another tenant on the same server is not refused; the limits
set through the admin API and the command line, checked, audited; the back-pressure 429 says
the same headers."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from chatapp_accounts.api.admin import PREFIX
from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import ConfigError, Settings, get_settings, settings_from_env
from chatapp_accounts.domain import admin
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, make_tenant, sync

from .helpers import APPS, EA, new_application, new_messenger, token

TENANTS = PREFIX + "/tenants"
PAGE = "page-limits"
# The defaults of this file's server: low enough to reach in a test.
REQUESTS, MESSAGES = 5, 3


@pytest.fixture
def limited(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        dataclasses.replace(
            settings, limit_requests_per_second=REQUESTS, limit_messages_per_second=MESSAGES,
            dispatcher=False,
        )
    , engine=engine)  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _until_refused(call: Any, most: int = 200) -> tuple[int, Any]:
    """Call until a 429 (within one second of the clock, started at its beginning): how many
    went through first, and the refusal."""
    time.sleep(math.ceil(time.time()) - time.time() + 0.01)  # a second's start
    for n in range(most):
        response = call()
        if response.status_code == 429:
            return n, response
    raise AssertionError(f"{most} calls and no 429")


def _rate_headers(response: Any, limit: int) -> None:
    h = response.headers
    assert h["x-ratelimit-limit"] == str(limit)
    assert h["x-ratelimit-remaining"] == "0"
    reset = int(h["x-ratelimit-reset"])  # Unix time in milliseconds: the next second's start
    assert reset % 1000 == 0 and time.time() * 1000 - 1000 < reset <= time.time() * 1000 + 1000
    assert h["retry-after"] == "1"


def test_past_its_limit_a_tenant_is_refused_on_each_api_in_its_shape(
    limited: TestClient, alice: TenantCreds, bob: TenantCreds
) -> None:
    # The External Accounts API: its error shape.
    n, refused = _until_refused(lambda: limited.get(EA, headers=alice.headers))
    assert n == REQUESTS
    _rate_headers(refused, REQUESTS)
    body = refused.json()
    assert body["type"] == "https://www.nexmo.com/messages/Errors#Throttled"
    assert body["title"] == "Too Many Requests" and "exceeded" in body["detail"]
    assert body["instance"] == refused.headers["x-request-id"]
    # Another tenant in the same second: its own count.
    assert limited.get(EA, headers=bob.headers).status_code == 200
    # The Application API: its shape.
    n, refused = _until_refused(lambda: limited.get(APPS, headers=alice.headers))
    _rate_headers(refused, REQUESTS)
    assert refused.json()["type"] == "https://developer.nexmo.com/api-errors#throttled"
    # The Redact API: problem+json.
    n, refused = _until_refused(lambda: limited.post(
        "/v1/redact/transaction", headers=alice.headers, json={"id": "x", "product": "sms"}))  # fmt: skip
    _rate_headers(refused, REQUESTS)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://developer.nexmo.com/api-errors#throttled"


def test_past_its_messages_per_second_a_send_is_refused_and_nothing_stored(
    limited: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    new_messenger(limited, alice, PAGE, applications=[new_application(limited, alice)["id"]])

    def send() -> Any:
        return limited.post("/v1/messages", headers=alice.headers, json={
            "channel": "messenger", "to": "customer-1", "from": PAGE, "message_type": "text",
            "text": "hello"})  # fmt: skip

    n, refused = _until_refused(send)
    assert n == MESSAGES
    _rate_headers(refused, MESSAGES)
    assert refused.json() == {
        "type": "https://developer.vonage.com/api-errors/messages#1000",
        "title": "Throttled",
        "detail": "Throttled - You have exceeded the submission capacity allowed on this "
        "account. Please wait and retry",
        "instance": refused.headers["x-request-id"],
    }
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*) FROM messages")).scalar()
    assert stored == n  # the refused send stored nothing
    # The sandbox API counts against the requests limit, not the messages one.
    assert limited.get("/sandbox/v1/messages", headers=alice.headers).status_code == 200
    metrics = limited.get("/metrics").text
    assert 'chatapp_rate_limited_total{api="messages"}' in metrics


def test_limits_set_through_the_admin_api_checked_audited_and_enforced(
    limited: TestClient, root: dict[str, str], uow_factory: SqlUnitOfWorkFactory
) -> None:
    made = limited.post(TENANTS, headers=root).json()
    key = made["api_key"]
    its = TenantCreds(key, made["api_secret"], None).headers  # type: ignore[arg-type]
    url = f"{TENANTS}/{key}/limits"
    shown = limited.get(url, headers=root)
    assert shown.status_code == 200
    assert shown.json() == {
        "api_key": key, "requests_per_second": None, "messages_per_second": None,
        "effective": {"requests_per_second": REQUESTS, "messages_per_second": MESSAGES},
    }  # fmt: skip
    put = limited.put(url, headers=root, json={"requests_per_second": 2})
    assert put.status_code == 200, put.text
    assert put.json()["requests_per_second"] == 2 and put.json()["messages_per_second"] is None
    assert put.json()["effective"] == {"requests_per_second": 2, "messages_per_second": MESSAGES}
    assert limited.get(url, headers=root).json() == put.json()

    time.sleep(1.2)  # every process reads the tenants' own limits each second
    n, refused = _until_refused(lambda: limited.get(APPS, headers=its))
    assert n == 2
    _rate_headers(refused, 2)

    # Refused, nothing changed: bad values, an unknown field, not JSON, no such tenant.
    for bad, names in (
        ({"requests_per_second": 0}, ["requests_per_second"]),
        ({"requests_per_second": "5", "messages_per_second": 10**7}, ["requests_per_second", "messages_per_second"]),
        ({"requests_per_second": True}, ["requests_per_second"]),
        ({"burst": 3}, ["burst"]),
    ):  # fmt: skip
        answer = limited.put(url, headers=root, json=bad)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert [p["name"] for p in answer.json()["invalid_parameters"]] == names
    assert limited.put(url, headers=root, content=b"[1]").status_code in (400, 415)
    assert limited.put(url, headers={**root, "content-type": "application/json"},
                       content=b"{").status_code == 400  # fmt: skip
    assert limited.put(f"{TENANTS}/nobody/limits", headers=root, json={}).status_code == 404
    assert limited.get(url, headers=root).json() == put.json()

    # A read-only token may look, not change; a tenant's credentials are no admin token.
    bearer = token(uow_factory, "reader", "read")
    assert limited.get(url, headers=bearer).status_code == 200
    assert limited.put(url, headers=bearer, json={}).status_code == 403
    assert limited.put(url, headers=its, json={}).status_code == 401

    # Back to the default: null (or left out).
    back = limited.put(url, headers=root, json={})
    assert back.json()["effective"] == {
        "requests_per_second": REQUESTS,
        "messages_per_second": MESSAGES,
    }
    lines = [
        e for e in sync(admin.audit_log(uow_factory, tenant=key)) if e.action == "tenants.limits"
    ]
    assert [e.outcome.split(":")[0] for e in lines] == ["ok", *["error"] * 6, "ok"]
    assert all(e.actor == "root" and e.request_id for e in lines)


def test_the_back_pressure_429_says_the_limit_too(
    settings: Settings, engine: Engine, alice: TenantCreds
) -> None:
    app = create_app(dataclasses.replace(settings, dispatcher=False, max_due_backlog=1,
                                         limit_messages_per_second=40), engine=engine)  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        new_messenger(client, alice, PAGE, applications=[new_application(client, alice)["id"]])
        answers = []
        for _ in range(3):
            answers.append(client.post("/v1/messages", headers=alice.headers, json={
                "channel": "messenger", "to": "c", "from": PAGE, "message_type": "text",
                "text": "x"}))  # fmt: skip
        time.sleep(1.0)  # the backlog is read every half second
        refused = client.post("/v1/messages", headers=alice.headers, json={
            "channel": "messenger", "to": "c", "from": PAGE, "message_type": "text", "text": "x"})  # fmt: skip
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert refused.status_code == 429, refused.text
    assert refused.json()["title"] == "Throttled"
    h = refused.headers
    assert h["x-ratelimit-limit"] == "40" and h["x-ratelimit-remaining"] == "0"
    assert h["retry-after"] == "1"
    assert abs(int(h["x-ratelimit-reset"]) - time.time() * 1000) < 3000


def test_the_limits_settings_are_checked() -> None:
    base = {"CHATAPP_ENCRYPTION_KEYS": "k" * 44}
    got = settings_from_env({**base, "CHATAPP_LIMIT_REQUESTS_PER_SECOND": "7",
                             "CHATAPP_LIMIT_MESSAGES_PER_SECOND": "2", "CHATAPP_LIMITS": "off"})  # fmt: skip
    assert (got.limit_requests_per_second, got.limit_messages_per_second, got.limits) == (
        7,
        2,
        False,
    )
    defaults = settings_from_env(base)
    assert (defaults.limit_requests_per_second, defaults.limit_messages_per_second) == (100, 30)
    for name, value in (("CHATAPP_LIMIT_REQUESTS_PER_SECOND", "0"),
                        ("CHATAPP_LIMIT_MESSAGES_PER_SECOND", "1000001"),
                        ("CHATAPP_LIMIT_MESSAGES_PER_SECOND", "ten")):  # fmt: skip
        with pytest.raises(ConfigError, match=name):
            settings_from_env({**base, name: value})


def test_limits_off_counts_nothing(settings: Settings, engine: Engine, alice: TenantCreds) -> None:
    app = create_app(dataclasses.replace(settings, limits=False, limit_requests_per_second=1),
                     engine=engine)  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = {client.get(APPS, headers=alice.headers).status_code for _ in range(10)}
    assert answers == {200}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM rate_windows")).scalar() == 0


def test_the_command_line_sets_and_shows_a_tenants_limits(
    settings: Settings, uow_factory: SqlUnitOfWorkFactory, capsys: Any, monkeypatch: Any
) -> None:
    tenant = make_tenant(uow_factory)
    env = {"CHATAPP_DATABASE_URL": settings.database_url,
           "CHATAPP_ENCRYPTION_KEYS": ",".join(settings.encryption_keys)}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # (read from this environment, not an earlier test's)
    try:
        _limits_by_command_line(tenant, uow_factory, capsys)
    finally:
        get_settings.cache_clear()


def _limits_by_command_line(
    tenant: TenantCreds, uow_factory: SqlUnitOfWorkFactory, capsys: Any
) -> None:
    from chatapp_accounts.cli import main

    assert main(["tenants", "limits", tenant.api_key, "--requests", "9", "--json"]) == 0
    shown = capsys.readouterr().out
    assert '"requests_per_second": 9' in shown and '"messages_per_second": null' in shown
    assert main(["tenants", "limits", tenant.api_key, "--messages", "4"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "requests_per_second: 9 (its own)", "messages_per_second: 4 (its own)"]  # fmt: skip
    assert main(["tenants", "limits", tenant.api_key, "--requests", "default"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "requests_per_second: 100 (the default)"
    assert main(["tenants", "limits", tenant.api_key, "--requests", "0"]) != 0
    assert "requests_per_second" in capsys.readouterr().err
    lines = sync(admin.audit_log(uow_factory, tenant=tenant.api_key))
    assert [(e.actor, e.action, e.outcome.split(":")[0]) for e in lines] == [
        ("cli", "tenants.limits", "ok"), ("cli", "tenants.limits", "ok"),
        ("cli", "tenants.limits", "ok"), ("cli", "tenants.limits", "error")]  # fmt: skip
