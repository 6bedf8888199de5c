"""Live mode under faults (docs/providers.md): the provider down for 30 s, the server killed
mid-sending, and answers that are not what they should be. A real server process on SQLite, the
loopback Meta fake standing in for Graph."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2 as httpx

from .live import Live, fakes, live_setup, point_callbacks, send
from .messaging import Receiver, receiver
from .server import base_env, new_tenant, running_server


def _all(hooks: Receiver, uuids: list[str], status: str, timeout: float = 90) -> None:
    hooks.wait_for(lambda _: all(status in hooks.statuses(u) for u in uuids), timeout)


def _texts(requests: list[dict[str, Any]]) -> Counter[str]:
    """How many times the provider took each text (answered 200)."""
    return Counter(r["body"]["text"]["body"] for r in requests
                   if r["status"] == 200 and r["product"] == "whatsapp")  # fmt: skip


def _sends(live: Live, count: int, pause: float = 0.0, seconds: float | None = None) -> list[str]:
    uuids: list[str] = []
    started = time.monotonic()
    while len(uuids) < count or (seconds is not None and time.monotonic() - started < seconds):
        uuids.append(send(live, "whatsapp", "447700900123", text=f"n{len(uuids)}"))
        time.sleep(pause)
    return uuids


def test_the_provider_down_for_30_s_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    with fakes(tmp_path) as (meta, rbm, settings), receiver() as hooks:
        env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/down.sqlite3", **settings)
        env.update(CHATAPP_PROVIDER_RETRY_FIRST_SECONDS="0.5",
                   CHATAPP_PROVIDER_RETRY_MAX_SECONDS="2",
                   CHATAPP_PROVIDER_RETRY_HORIZON_SECONDS="300")  # fmt: skip
        creds = new_tenant(env)
        with running_server(env) as server:
            point_callbacks(meta, rbm, server)
            live = live_setup(server, env, creds, hooks.url)
            meta.stop()  # connection refused from now on
            uuids = _sends(live, 1, pause=0.1, seconds=30)
            assert all(hooks.statuses(u) == [] for u in uuids)  # nothing given up on
            meta.start()  # back, on the same port
            _all(hooks, uuids, "submitted")
            taken = _texts(meta.fake.requests)
            assert set(taken) == {f"n{i}" for i in range(len(uuids))}  # none lost
            assert max(taken.values()) == 1  # none sent twice
            metrics = httpx.get(server.url + "/metrics").text
            assert 'chatapp_provider_calls_total{outcome="unreachable",provider="meta"}' in metrics


def test_sigkill_mid_sending_reaches_the_provider_at_least_once(tmp_path: Path) -> None:
    with fakes(tmp_path) as (meta, rbm, settings), receiver() as hooks:
        env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/kill.sqlite3", **settings)
        env.update(CHATAPP_PROVIDER_TIMEOUT_SECONDS="5", CHATAPP_SEND_LEASE_SECONDS="6",
                   CHATAPP_PROVIDER_RETRY_HORIZON_SECONDS="300")  # fmt: skip
        creds = new_tenant(env)
        meta.fake.set_latency(1.0)  # every try in flight for a second
        with running_server(env) as first:
            point_callbacks(meta, rbm, first)
            live = live_setup(first, env, creds, hooks.url)
            uuids = _sends(live, 40)
            deadline = time.monotonic() + 20
            while len(meta.fake.requests) < 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            first.proc.kill()  # SIGKILL, tries in flight
            first.proc.wait(10)
        meta.fake.set_latency(0.0)
        with running_server(env) as second:
            point_callbacks(meta, rbm, second)
            live.client.base_url = httpx.URL(second.url)
            _all(hooks, uuids, "submitted")
            taken = _texts(meta.fake.requests)
            assert set(taken) == {f"n{i}" for i in range(len(uuids))}  # each at least once
            metrics = httpx.get(second.url + "/metrics").text
            line = next(m for m in metrics.splitlines()
                        if m.startswith('chatapp_send_tries_total{outcome="unknown_retried"}'))  # fmt: skip
            in_flight = int(float(line.split()[-1]))
            twice = sum(n - 1 for n in taken.values())
            assert 0 < in_flight and twice <= in_flight  # the documented window, counted


def test_bad_answers_end_with_a_clear_error_never_a_stuck_job(tmp_path: Path) -> None:
    with fakes(tmp_path) as (meta, rbm, settings), receiver() as hooks:
        env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/bad.sqlite3", **settings)
        creds = new_tenant(env)
        with running_server(env) as server:
            point_callbacks(meta, rbm, server)
            live = live_setup(server, env, creds, hooks.url)
            empty = send(live, "whatsapp", "447700900503")  # 503, no body: retried
            no_id = send(live, "whatsapp", "447700900200")  # 200 without an id
            hangs = send(live, "whatsapp", "447700900999")  # never answers
            _all(hooks, [empty, hangs], "undeliverable", timeout=30)
            _all(hooks, [no_id], "rejected", timeout=30)
            errors = {h.json["message_uuid"]: h.json["error"] for h in hooks.hooks
                      if "error" in h.json}  # fmt: skip
            assert errors[empty]["title"] == "1331" and "HTTP 503" in errors[empty]["detail"]
            assert errors[no_id]["title"] == "1331"
            assert errors[hangs]["title"] == "1331"
            assert "no answer in time" in errors[hangs]["detail"]
            for error in errors.values():
                assert "Traceback" not in error["detail"] and "EAAB" not in error["detail"]
            assert "Traceback" not in server.output
