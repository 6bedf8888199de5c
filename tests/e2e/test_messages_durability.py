"""Nothing accepted is lost: SIGKILL of the server mid-burst, then a restart, and every message
answered 202 gets all its webhooks; two servers on one PostgreSQL never send a webhook twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from chatapp_accounts.security.tokens import new_key

from .messaging import messaging_setup, receiver, text
from .server import base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e
QUICK = {
    "CHATAPP_WEBHOOK_TIMEOUT_SECONDS": "1",
    "CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS": "0.2",
    "CHATAPP_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS": "0.5",
    "CHATAPP_ACCESS_LOG": "false",
    # A send job claimed by the killed server is taken over once its lease runs out.
    "CHATAPP_PROVIDER_TIMEOUT_SECONDS": "1",
    "CHATAPP_SEND_LEASE_SECONDS": "3",
}


def _burst(
    url: str, auth: tuple[str, str], n: int, on_accepted: Callable[[int], None] | None = None
) -> list[str]:
    """n sends from 8 threads; the uuids answered 202 (the rest failed: the server was gone).
    `on_accepted(count)` after each 202."""
    accepted: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            answer = httpx.post(f"{url}/v1/messages", json=text("whatsapp"), auth=auth, timeout=5)
        except httpx.HTTPError:
            return
        if answer.status_code == 202:
            with lock:
                accepted.append(answer.json()["message_uuid"])
                count = len(accepted)
            if on_accepted is not None:
                on_accepted(count)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    return accepted


def test_sigkill_mid_burst_loses_no_accepted_message(db_env: dict[str, str]) -> None:
    env = base_env(**db_env, **QUICK)
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with receiver() as hooks:
        slow = hooks.answer

        def answer(path: str, n: int) -> int:
            time.sleep(0.01)  # a receiver a little slower than the sends: a backlog builds
            return slow(path, n)

        hooks.answer = answer
        with running_server(env) as server:
            messaging_setup(server, env, creds, hooks.url)

            def kill_at_100(count: int) -> None:
                if count == 100:
                    os.kill(server.proc.pid, signal.SIGKILL)

            accepted = _burst(server.url, auth, 400, kill_at_100)
            server.proc.wait(10)
        assert 100 <= len(accepted) < 400
        received_before = len(hooks.hooks)
        with running_server(env):
            hooks.wait_for(
                lambda seen: all(
                    {"submitted", "delivered"} <= set(hooks.statuses(u)) for u in accepted
                ),
                timeout=60,
            )
    seen = Counter((h.json["message_uuid"], h.json["status"]) for h in hooks.hooks)
    duplicates = sum(n - 1 for n in seen.values())
    # Only attempts in flight at the kill may come twice: at most the dispatcher's concurrency.
    assert duplicates <= 256, duplicates
    assert received_before < 2 * len(accepted) or duplicates == 0


@pytest.mark.postgres
def test_two_servers_on_one_postgres_never_send_a_webhook_twice(pg_databases: object) -> None:
    env = base_env(CHATAPP_DATABASE_URL=pg_databases.new(), CHATAPP_ENCRYPTION_KEYS=new_key(),  # type: ignore[attr-defined]
                   **QUICK)  # fmt: skip
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with receiver() as hooks, running_server(env) as one, running_server(env) as two:
        messaging_setup(one, env, creds, hooks.url)
        with ThreadPoolExecutor(2) as pool:
            bursts = [pool.submit(_burst, s.url, auth, 150) for s in (one, two)]
            accepted = [u for b in bursts for u in b.result()]
        assert len(accepted) == 300
        hooks.wait_for(lambda seen: len(seen) >= 600, timeout=60)
        time.sleep(1)  # anything sent twice would arrive by now
    seen = Counter((h.json["message_uuid"], h.json["status"]) for h in hooks.hooks)
    assert len(seen) == 600 and set(seen.values()) == {1}
    for message_uuid in accepted[:20]:
        assert hooks.statuses(message_uuid) == ["submitted", "delivered"]
