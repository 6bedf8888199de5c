"""Messages under faults, end to end (the real server, HTTP only):

- PostgreSQL restarted under a burst of sends: every send is answered 202 or a 503 in the
  Messages API's error shape (never a 500, never a dropped connection), and every message answered
  202 gets its `submitted` and `delivered` webhooks, with no restart of the server.
- A receiver that takes 5 s to answer holds only its own webhooks: another application's
  `submitted` and `delivered` arrive while the slow one's first requests are still held.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx2 as httpx
import pytest

from chatapp_accounts.security.tokens import new_key
from tests.conftest import IN_CI

from .messaging import (
    Hook,
    Receiver,
    Setup,
    check_webhook,
    http_server,
    messaging_setup,
    receiver,
    text,
)
from .pg_cluster import Cluster, ClusterUnavailable, own_cluster
from .server import Server, base_env, cli, new_tenant, running_server

pytestmark = pytest.mark.e2e
QUICK = {
    "CHATAPP_WEBHOOK_TIMEOUT_SECONDS": "2",
    "CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS": "0.2",
    "CHATAPP_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS": "0.5",
    "CHATAPP_ACCESS_LOG": "false",
}
# What /v1/messages answers when the database cannot be reached (api/errors.py, MESSAGES_TABLE).
UNAVAILABLE = {
    "type": "https://developer.vonage.com/api-errors#service-unavailable",
    "title": "Service Unavailable",
    "detail": "The database cannot be reached; try again shortly",
}


def _tail(server: Server, lines: int = 60) -> str:
    return "".join(server.lines[-lines:])


# --- PostgreSQL restarted mid-burst ------------------------------------------------------------


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of the test's own, stopped and removed at the end whatever happens.
    Under CI=true a cluster that cannot be made fails the test (as tests/conftest.py's
    pg_server does); elsewhere it skips."""
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(own_cluster())
        except ClusterUnavailable as exc:
            message = f"cannot make a PostgreSQL cluster of the test's own: {exc}"
            if IN_CI:
                pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
            pytest.skip(message)
        yield cluster


@dataclass
class Sent:
    """One send of the burst: when it started (monotonic), and what came back."""

    started: float
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class Burst:
    """Sends paced at `per_second` from `workers` threads, each on a new connection, until
    stopped (or `limit` sends)."""

    def __init__(
        self, url: str, auth: tuple[str, str], *, per_second: float = 50, workers: int = 8,
        limit: int = 1500,
    ) -> None:  # fmt: skip
        self.url, self.auth = url, auth
        self.interval = 1 / per_second
        self.limit = limit
        self.sent: list[Sent] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._numbers = itertools.count()
        self._t0 = time.monotonic()
        self._pool = ThreadPoolExecutor(workers)
        self._workers = [self._pool.submit(self._work) for _ in range(workers)]

    def _work(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                i = next(self._numbers)
            if i >= self.limit:
                return
            delay = self._t0 + i * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            one = Sent(time.monotonic())
            try:
                answer = httpx.post(
                    f"{self.url}/v1/messages", json=text("whatsapp"), auth=self.auth, timeout=30
                )
            except httpx.HTTPError as exc:
                one.error = f"{type(exc).__name__}: {exc}"
            else:
                one.status = answer.status_code
                one.headers = dict(answer.headers.items())
                try:
                    one.body = answer.json()
                except ValueError:
                    one.body = answer.text
            with self.lock:
                self.sent.append(one)

    def accepted(self, since: float = 0.0) -> list[str]:
        with self.lock:
            return [s.body["message_uuid"] for s in self.sent
                    if s.status == 202 and s.started >= since]  # fmt: skip

    def wait_accepted(self, n: int, since: float = 0.0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted(since)) < n:
            if time.monotonic() > deadline:
                with self.lock:
                    seen = Counter(s.status for s in self.sent)
                raise AssertionError(f"fewer than {n} sends accepted in {timeout} s: {seen}")
            time.sleep(0.02)

    def finish(self) -> list[Sent]:
        self.stop.set()
        for worker in self._workers:
            worker.result(timeout=120)
        self._pool.shutdown()
        return self.sent


def _check_answer(one: Sent) -> str | None:
    """What is wrong with one send's answer (None: a 202 or a well-formed 503)."""
    if one.error is not None:
        return f"no answer: {one.error}"
    if one.status == 202:
        ok = isinstance(one.body, dict) and set(one.body) == {"message_uuid"}
        return None if ok else f"202 with {one.body!r}"
    if one.status == 503:
        request_id = one.headers.get("x-request-id")
        expected = {**UNAVAILABLE, "instance": request_id}
        if not request_id or one.body != expected:
            return f"503 with {one.body!r} (x-request-id {request_id!r})"
        if one.headers.get("content-type") != "application/json":
            return f"503 of type {one.headers.get('content-type')!r}"
        if one.headers.get("retry-after") != "1":
            return f"503 with Retry-After {one.headers.get('retry-after')!r}"
        return None
    return f"{one.status} with {one.body!r}"


@pytest.mark.postgres
def test_postgres_restarted_mid_burst_loses_no_accepted_message(pg_cluster: Cluster) -> None:
    env = base_env(
        CHATAPP_DATABASE_URL=pg_cluster.url,
        CHATAPP_ENCRYPTION_KEYS=new_key(),
        CHATAPP_DB_POOL_TIMEOUT="2",
        **QUICK,
    )
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with receiver() as hooks, running_server(env) as server:
        setup = messaging_setup(server, env, creds, hooks.url)
        burst = Burst(server.url, auth)
        try:
            burst.wait_accepted(100)
            pg_cluster.restart("fast")
            restarted = time.monotonic()
            # The server, not restarted, takes sends again.
            burst.wait_accepted(180, since=restarted)
        finally:
            sent = burst.finish()
        wrong = [(i, problem) for i, one in enumerate(sent)
                 if (problem := _check_answer(one)) is not None]  # fmt: skip
        assert not wrong, f"{len(wrong)} of {len(sent)} sends: {wrong[:10]}\n{_tail(server)}"
        accepted = burst.accepted()
        assert len(set(accepted)) == len(accepted)
        waiting = set(accepted)

        def all_delivered(seen: list[Hook]) -> bool:
            done = {h.json["message_uuid"] for h in seen if h.json.get("status") == "delivered"}
            sub = {h.json["message_uuid"] for h in seen if h.json.get("status") == "submitted"}
            return waiting <= done and waiting <= sub

        try:
            received = hooks.wait_for(all_delivered, timeout=60)
        except AssertionError:
            seen = {(h.json["message_uuid"], h.json["status"]) for h in hooks.hooks}
            missing = [(u, s) for u in accepted for s in ("submitted", "delivered")
                       if (u, s) not in seen]  # fmt: skip
            raise AssertionError(
                f"{len(missing)} webhooks of {len(accepted)} accepted messages never came: "
                f"{missing[:10]}\n{_tail(server)}"
            ) from None
        _report_burst(sent, received, waiting)
    mine = [h for h in received if h.json["message_uuid"] in waiting]
    for hook in mine:
        check_webhook(hook, setup.creds["signature_secret"], creds["api_key"],
                      setup.application_id)  # fmt: skip


def _report_burst(sent: list[Sent], received: list[Hook], accepted: set[str]) -> None:
    """Counts for the reader of `pytest -s` (nothing is asserted on them)."""
    statuses = Counter(s.status for s in sent)
    seen = Counter((h.json["message_uuid"], h.json["status"]) for h in received)
    duplicates = sum(n - 1 for n in seen.values())
    strangers = {u for u, _ in seen} - accepted  # sent although the answer was not a 202
    print(f"\nburst: {len(sent)} sends, answers {dict(statuses)}; webhooks {len(received)}, "
          f"{duplicates} duplicates, {len(strangers)} messages not answered 202 but sent")  # fmt: skip


# --- a slow receiver holds only its own webhooks -----------------------------------------------

SLOW_SECONDS = 5
B_SENDER = "447700900001"  # a WhatsApp number of the second application


class Timeline:
    """One order for what the two receivers see: `note` numbers each event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, str]] = []  # (who, what, message_uuid/status)

    def note(self, who: str, what: str, detail: str = "") -> int:
        with self.lock:
            self.events.append((who, what, detail))
            return len(self.events) - 1

    def first(self, who: str, what: str) -> int | None:
        with self.lock:
            return next((i for i, e in enumerate(self.events) if e[:2] == (who, what)), None)

    def indices(self, who: str, what: str) -> list[int]:
        with self.lock:
            return [i for i, e in enumerate(self.events) if e[:2] == (who, what)]


@dataclass
class HeldReceiver(Receiver):
    arrived: threading.Event = field(default_factory=threading.Event)  # a first request came
    answered: threading.Event = field(default_factory=threading.Event)  # a first answer went


@contextmanager
def timed_receiver(name: str, timeline: Timeline, delay: float = 0) -> Iterator[HeldReceiver]:
    """messaging.receiver()'s kind (records every request, answers 200), on the timeline as
    `name`, each request held `delay` seconds before it is answered."""
    state = HeldReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            hook = Hook(self.path, dict(self.headers.items()), body)
            detail = f"{hook.json.get('message_uuid')}/{hook.json.get('status')}"
            timeline.note(name, "arrived", detail)
            state.arrived.set()
            if delay:
                time.sleep(delay)
            with state.lock:
                state.hooks.append(hook)
            timeline.note(name, "answered", detail)
            state.answered.set()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state


def _second_application(setup: Setup, env: dict[str, str], hooks: str) -> str:
    """Another application of the same tenant, its webhooks to `hooks`, with a WhatsApp number
    of its own (B_SENDER) linked to it. Its id."""
    webhooks = {"inbound_url": {"address": hooks + "/inbound", "http_method": "POST"},
                "status_url": {"address": hooks + "/status", "http_method": "POST"}}  # fmt: skip
    made = setup.client.post(
        "/v2/applications",
        json={"name": "quick", "capabilities": {"messages": {"webhooks": webhooks}}},
    )
    assert made.status_code == 201, made.text
    application_id = str(made.json()["id"])
    done = cli("accounts", "provision", "whatsapp", B_SENDER, "--api-key", setup.creds["api_key"],
               env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    linked = setup.client.post(f"/beta/chatapp-accounts/whatsapp/{B_SENDER}/applications",
                               json={"application": application_id})  # fmt: skip
    assert linked.status_code == 200, linked.text
    return application_id


def _send(setup: Setup, body: dict[str, Any]) -> str:
    answer = setup.client.post("/v1/messages", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["message_uuid"])


def test_a_slow_receiver_does_not_hold_another_applications_webhooks(
    db_env: dict[str, str],
) -> None:
    # An attempt may take longer than the slow receiver holds it: A's webhooks are not retried.
    env = base_env(**db_env, **{**QUICK, "CHATAPP_WEBHOOK_TIMEOUT_SECONDS": "60"})
    creds = new_tenant(env)
    timeline = Timeline()
    with (
        timed_receiver("A", timeline, delay=SLOW_SECONDS) as slow,
        timed_receiver("B", timeline) as quick,
        running_server(env) as server,
    ):
        setup = messaging_setup(server, env, creds, slow.url)  # application A: the slow one
        b_id = _second_application(setup, env, quick.url)
        to_a = [_send(setup, text("whatsapp")) for _ in range(4)]
        # A's first webhook is being held before anything is sent to B.
        assert slow.arrived.wait(30), f"no webhook reached A\n{_tail(server)}"
        assert not slow.answered.is_set(), "A answered before B was sent to (a slow machine?)"
        to_b = [_send(setup, text("whatsapp") | {"from": B_SENDER}) for _ in range(4)]

        def b_done(seen: list[Hook]) -> bool:
            return all({"submitted", "delivered"} <= set(quick.statuses(u)) for u in to_b)

        quick.wait_for(b_done, timeout=60)
        first_a_answer = timeline.first("A", "answered")
        b_answers = timeline.indices("B", "answered")
        assert first_a_answer is None or max(b_answers) < first_a_answer, timeline.events
        assert len(b_answers) == 2 * len(to_b), timeline.events

        def a_done(seen: list[Hook]) -> bool:
            return all({"submitted", "delivered"} <= set(slow.statuses(u)) for u in to_a)

        slow.wait_for(a_done, timeout=90)
    for message_uuid in to_a:
        assert slow.statuses(message_uuid) == ["submitted", "delivered"]
    for message_uuid in to_b:
        assert quick.statuses(message_uuid) == ["submitted", "delivered"]
    secret, key = creds["signature_secret"], creds["api_key"]
    for hook in slow.hooks:
        check_webhook(hook, secret, key, setup.application_id)
    for hook in quick.hooks:
        check_webhook(hook, secret, key, b_id)
