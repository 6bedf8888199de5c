"""Health, readiness, metrics, request ids and the access log, through the app."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import Settings
from chatapp_accounts.storage.migrate import head_revision
from tests.conftest import TenantCreds
from tests.jwt_tokens import sdk_token

from .helpers import APPS, EA, MESSAGES, new_messenger


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": "ok", "schema": head_revision()}


def test_readyz_reports_a_schema_behind(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["reason"] == f"schema is at 0000, the latest migration is {head_revision()}"
    finally:  # PostgreSQL's database is shared by a test process's tests: put it back
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
            )


def metric(body: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            sample, _, value = line.rpartition(" ")
            got = re.search(r"\{(.*)\}", sample)
            got_labels = ",".join(sorted(got.group(1).split(","))) if got else ""
            if sample.split("{")[0] == name and got_labels == wanted:
                return float(value)
    return 0.0


def test_metrics_count_by_route_template_and_status(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "m1")
    for _ in range(3):
        client.get(f"{EA}/messenger/m1", headers=alice.headers)
    client.get(f"{EA}/messenger/nope", headers=alice.headers)
    client.get(f"{EA}/messenger/m1")
    body = client.get("/metrics").text
    route = "/beta/chatapp-accounts/messenger/{external_id}"
    assert metric(body, "chatapp_http_requests_total", route=route, method="GET", status="200") == 3
    assert metric(body, "chatapp_http_requests_total", route=route, method="GET", status="404") == 1
    assert metric(body, "chatapp_http_requests_total", route=route, method="GET", status="401") == 1
    assert metric(body, "chatapp_http_requests_total", route="/beta/chatapp-accounts/messenger",
                  method="POST", status="201") == 1  # fmt: skip
    assert metric(body, "chatapp_http_request_duration_seconds_count", route=route) == 5
    assert metric(body, "chatapp_db_connections") >= 1


def test_jwt_cache_hits_are_counted(client: TestClient, alice: TenantCreds) -> None:
    app = client.post(
        APPS, json={"name": "j", "capabilities": MESSAGES}, headers=alice.headers
    ).json()
    h = {"Authorization": f"Bearer {sdk_token(app['id'], app['keys']['private_key'])}"}
    for _ in range(4):
        assert client.get(EA, headers=h).status_code == 200
    body = client.get("/metrics").text
    assert metric(body, "chatapp_jwt_signature_checks_total") == 1
    assert metric(body, "chatapp_jwt_cache_hits_total") == 3


@pytest.fixture(params=["text", "json"])
def logged(
    request: pytest.FixtureRequest, settings: Settings, engine: Any
) -> Iterator[tuple[TestClient, io.StringIO, str]]:
    stream = io.StringIO()
    app = create_app(settings.with_(log_format=request.param), engine=engine, log_stream=stream)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, stream, request.param


def test_one_log_line_per_request_and_no_secrets(
    logged: tuple[TestClient, io.StringIO, str], alice: TenantCreds
) -> None:
    client, stream, fmt = logged
    new_messenger(client, alice, "logged-page", access_token="SECRET-TOKEN-VALUE")
    client.get(
        f"{EA}/messenger/logged-page", headers={**alice.headers, "X-Request-Id": "trace-me-1"}
    )
    client.get(EA, headers={"Authorization": "Basic bm9wZTpub3Bl"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert records[1]["request_id"] == "trace-me-1"
        assert records[1]["route"] == "/beta/chatapp-accounts/messenger/{external_id}"
        assert records[1]["status"] == 200 and records[1]["api_key"] == alice.api_key
        assert records[2]["status"] == 401 and records[2]["api_key"] is None
        assert isinstance(records[1]["duration_ms"], float)
    else:
        assert (
            "request_id=trace-me-1 method=GET route=/beta/chatapp-accounts/messenger/{external_id} status=200"
            in lines[1]
        )
        assert f"api_key={alice.api_key}" in lines[1]
        assert lines[2].endswith("api_key=-")
    text_ = stream.getvalue()
    for secret in (alice.api_secret, "SECRET-TOKEN-VALUE", "bm9wZTpub3Bl", "Basic"):
        assert secret not in text_


def test_request_ids(client: TestClient, alice: TenantCreds) -> None:
    made = client.get(EA, headers=alice.headers).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    other = client.get(EA, headers=alice.headers).headers["x-request-id"]
    assert other != made
    kept = client.get(EA, headers={**alice.headers, "X-Request-Id": "abc.DEF:1-2_3"})
    assert kept.headers["x-request-id"] == "abc.DEF:1-2_3"
    replaced = client.get(EA, headers={**alice.headers, "X-Request-Id": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    error = client.get(f"{EA}/messenger/nope", headers={**alice.headers, "X-Request-Id": "err-1"})
    assert error.json()["instance"] == "err-1" and error.headers["x-request-id"] == "err-1"


def test_a_500_has_a_request_id_and_no_traceback(
    client: TestClient, alice: TenantCreds, engine: Engine
) -> None:
    new_messenger(client, alice, "a")
    new_messenger(client, alice, "b")
    with engine.begin() as conn:  # b's ciphertext moved to a: it must not decrypt there
        blob = conn.execute(
            text("SELECT access_token FROM accounts WHERE external_id = 'b'")
        ).scalar_one()
        conn.execute(
            text("UPDATE accounts SET access_token = :b WHERE external_id = 'a'"), {"b": blob}
        )
    for url in (f"{EA}/messenger/a", EA):  # the hot path and the routed path
        r = client.get(url, headers={**alice.headers, "X-Request-Id": "five-hundred"})
        assert r.status_code == 500
        assert r.headers["x-request-id"] == "five-hundred"
        assert r.json()["instance"] == "five-hundred" and "Traceback" not in r.text


def test_an_unexpected_failure_is_a_500_in_the_error_shape_and_logged(
    client: TestClient, alice: TenantCreds, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from chatapp_accounts.domain import accounts

    async def broken(*_args: object) -> None:
        raise RuntimeError("a detail no client may see")

    monkeypatch.setattr(accounts, "get_account", broken)
    with caplog.at_level("ERROR"):
        r = client.get(f"{EA}/messenger/p1", headers=alice.headers)
    assert r.status_code == 500
    assert r.json() == {
        "type": "https://www.nexmo.com/messages/Errors#InternalError",
        "title": "Internal Server Error",
        "detail": "Something went wrong on our side",
        "instance": r.headers["x-request-id"],
    }
    assert "a detail no client may see" not in r.text
    assert "RuntimeError" in caplog.text and r.headers["x-request-id"] in caplog.text
    assert client.get(f"{EA}/messenger/p1", headers=alice.headers).status_code == 500
