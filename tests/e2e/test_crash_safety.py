"""Crash safety: stream creates, SIGKILL the server mid-stream, restart it. Every create that
was answered 201 is there, whole; requests cut off by the kill either happened entirely or not
at all; nothing half-written is stored."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx
import pytest
from sqlalchemy import text

from chatapp_accounts.storage.engine import make_engine

from .server import base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"
STREAMS = 4
KILL_AFTER = 150


def test_sigkill_mid_stream_loses_nothing_answered(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    answered: dict[str, str] = {}  # external_id -> the application it was created with
    attempted: dict[str, str] = {}
    lock = threading.Lock()
    with running_server(env) as server:
        app_id = httpx.post(
            f"{server.url}/v2/applications",
            auth=auth,
            json={"name": "a", "capabilities": {"messages": {}}},
        ).json()["id"]

        def stream(n: int) -> None:
            with httpx.Client(base_url=server.url, auth=auth, timeout=10) as c:
                for i in range(100_000):
                    external_id = f"s{n}-{i}"
                    app = [app_id] if i % 2 else []
                    with lock:
                        attempted[external_id] = app_id if app else ""
                    try:
                        r = c.post(
                            f"{EA}/messenger",
                            json={
                                "external_id": external_id,
                                "access_token": f"tok-{external_id}",
                                "applications": app,
                            },
                        )
                    except httpx.TransportError:
                        return  # the server is gone
                    assert r.status_code == 201, r.text
                    with lock:
                        answered[external_id] = app_id if app else ""

        threads = [threading.Thread(target=stream, args=(n,)) for n in range(STREAMS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        server.proc.kill()  # SIGKILL, mid-stream
        server.proc.wait(10)
        for t in threads:
            t.join(15)
    assert len(answered) >= KILL_AFTER

    with running_server(env) as server, httpx.Client(base_url=server.url, auth=auth) as c:
        for external_id, app in answered.items():
            r = c.get(f"{EA}/messenger/{external_id}")
            assert r.status_code == 200, f"answered 201 but lost: {external_id}"
            body = r.json()
            assert body["access_token"] == f"tok-{external_id}"
            assert body["applications"] == ([app] if app else [])
        listed: list[dict[str, object]] = []
        page = 1
        while True:
            chunk = c.get(f"{EA}?page_size=100&page_number={page}").json()["_embedded"]
            if not chunk:
                break
            listed += chunk
            page += 1
    # Whatever else is stored was attempted, and is whole (its token decrypts to the right value).
    for account in listed:
        external_id = str(account["external_id"])
        assert external_id in attempted
        assert account["access_token"] == f"tok-{external_id}"
        assert account["applications"] == (
            [attempted[external_id]] if attempted[external_id] else []
        )
    assert {str(a["external_id"]) for a in listed} >= set(answered)
    assert len(listed) - len(answered) <= STREAMS  # at most the requests in flight at the kill

    engine = make_engine(db_env["CHATAPP_DATABASE_URL"])
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()
