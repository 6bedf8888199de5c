"""What operators see: request ids, one structured log line per request, Prometheus metrics.

One pure-ASGI middleware, outermost, does all three per request, so their cost is a few
dictionary lookups and one write. Each request gets an id (a sane incoming X-Request-Id is
kept), echoed in the response header and used as `instance` in error bodies.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST_ID = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}\Z")
UNMATCHED = "unmatched"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The service's metrics, on a registry of its own (one per app, none at import)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Requests being served now, for the webhook dispatcher, which yields to them.
        self.in_flight = 0
        self.requests = Counter(
            "chatapp_http_requests", "HTTP requests answered", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "chatapp_http_request_duration_seconds", "Time to answer, by route template",
            ["route"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.jwt_cache_hits = Counter(
            "chatapp_jwt_cache_hits", "Bearer tokens accepted from the verified-token cache",
            registry=r,
        )  # fmt: skip
        self.jwt_signature_checks = Counter(
            "chatapp_jwt_signature_checks", "Bearer token signatures verified", registry=r
        )
        self.db_connections = Gauge(
            "chatapp_db_connections", "Open database connections of the request path",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.db_unavailable = Counter(
            "chatapp_db_unavailable", "Requests answered 503 because the database was unreachable",
            registry=r,
        )  # fmt: skip
        self.messages_accepted = Counter(
            "chatapp_messages_accepted", "Messages accepted (202), by channel", ["channel"],
            registry=r,
        )  # fmt: skip
        self.webhook_attempts = Counter(
            "chatapp_webhook_attempts", "Webhook delivery attempts, by outcome "
            "(delivered, retry, failed)", ["outcome"], registry=r,
        )  # fmt: skip
        self.webhooks_pending = Gauge(
            "chatapp_webhooks_pending", "Webhooks not yet delivered nor failed (all processes)",
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.webhook_oldest_pending_age = Gauge(
            "chatapp_webhook_oldest_pending_age_seconds", "Age of the oldest pending webhook",
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.db_statements = Gauge(
            "chatapp_db_statements", "Statements this process has sent to the database (BEGIN "
            "and COMMIT included), since it started", registry=r, multiprocess_mode="all",
        )  # fmt: skip
        self.backlog = Gauge(
            "chatapp_backlog", "Work due now and not yet done (all processes), by kind "
            "(send_job, webhook)", ["kind"], registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.backlog_oldest_age = Gauge(
            "chatapp_backlog_oldest_due_age_seconds", "How long the oldest due work has been "
            "due, by kind (send_job, webhook)", ["kind"], registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.sends = Counter(
            "chatapp_send_tries", "Tries to hand a message to its channel, by outcome "
            "(taken, retry, timeout, throttled, deferred, refused, failed, unknown_retried)",
            ["outcome"], registry=r,
        )  # fmt: skip
        # Live channels (docs/providers.md).
        self.provider_calls = Counter(
            "chatapp_provider_calls", "Calls to a provider (meta, rbm), by outcome (ok: 2xx, "
            "refused: another answer, unreachable: none)", ["provider", "outcome"], registry=r,
        )  # fmt: skip
        self.provider_latency = Histogram(
            "chatapp_provider_call_duration_seconds", "Time a provider took to answer",
            ["provider"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.provider_callbacks = Counter(
            "chatapp_provider_callbacks", "Provider callbacks and their events, by outcome "
            "(verified, bad_signature, malformed, unknown_object, handshake_refused; events: "
            "applied, duplicate, held, unknown, inbound, unlinked)", ["provider", "outcome"],
            registry=r,
        )  # fmt: skip
        self.provider_tokens = Counter(
            "chatapp_provider_tokens_refreshed", "Access tokens fetched from a provider's token "
            "endpoint", ["provider"], registry=r,
        )  # fmt: skip
        self.held_statuses = Counter(
            "chatapp_held_statuses", "Statuses held for a provider id not yet recorded, by what "
            "became of them (applied; unchanged: it added nothing; dropped after 60 s)",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.work_dropped = Counter(
            "chatapp_work_dropped", "Work dropped undone because its tenant was deleted (or its "
            "message pruned), by kind (send_job, webhook): what was queued when the tenant was "
            "deleted, and what was in flight then", ["kind"], registry=r,
        )  # fmt: skip
        self.throttled = Counter(
            "chatapp_sends_throttled", "Sends refused with 429: the due backlog was past its bound",
            registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "chatapp_rate_limited", "Requests refused with 429: past the tenant's limit on the "
            "API (docs/limits.md)", ["api"], registry=r,
        )  # fmt: skip
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answer and its duration."""
        requests, latency = self._metrics_of((route, method, status))
        requests.inc()
        latency.observe(seconds)

    def jwt_cache_hit(self) -> None:
        self.jwt_cache_hits.inc()

    def _metrics_of(self, key: tuple[str, str, int]) -> tuple[Any, Any]:
        children = self._children.get(key)
        if children is None:
            route, method, status = key
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            if len(self._children) < 4096:  # routes are templates: this stays small
                self._children[key] = children
        return children

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's files."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def _soon(call: Callable[[], None]) -> None:
    """`call` at the end of this turn of the event loop; at once where no loop runs."""
    try:
        asyncio.get_running_loop().call_soon(call)
    except RuntimeError:
        call()


class AccessLog:
    """One line per request on stderr: text (key=value) or JSON. Never a secret: the line
    holds the id, method, route template, status, duration and the tenant's api_key only.

    Lines are written once per turn of the event loop, together: under load one write carries
    many lines (a write per line was a fifth of the cost of a request), and no line waits
    longer than the requests being answered in that turn."""

    def __init__(self, fmt: str = "text", stream: IO[str] | None = None) -> None:
        self._json = fmt == "json"
        self._stream = stream if stream is not None else sys.stderr
        self._millisecond = -1
        self._seconds = ""  # of self._millisecond, to the second
        self._stamp = ""  # of self._millisecond: the answers of one turn mostly share it
        self._encode = msgspec.json.Encoder().encode
        self._pending: list[str] = []

    def _timestamp(self, now: float) -> str:
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:
            second, fraction = divmod(millisecond, 1000)
            if second != self._millisecond // 1000:
                self._seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._millisecond = millisecond
            self._stamp = f"{self._seconds}.{fraction:03d}Z"
        return self._stamp

    def write(
        self, request_id: str, method: str, route: str, status: int, seconds: float, api_key: str
    ) -> None:
        stamp = self._timestamp(time.time())
        if self._json:
            line = self._encode(
                {"time": stamp, "request_id": request_id, "method": method, "route": route,
                 "status": status, "duration_ms": round(seconds * 1000, 3),
                 "api_key": api_key or None}
            ).decode()  # fmt: skip
        else:
            line = (
                f"{stamp} request_id={request_id} method={method} route={route} "
                f"status={status} duration_ms={seconds * 1000:.3f} api_key={api_key or '-'}"
            )
        self._pending.append(line)
        if len(self._pending) == 1:
            _soon(self.flush)

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


class Observability:
    """Outermost middleware: request id, access log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log
        # Ids are a random prefix per process and a counter: unique, and no system call per
        # request (os.urandom is one). 20 hex digits of prefix, 12 of counter.
        self._prefix = os.urandom(10).hex()
        self._count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                incoming = value
                break
        if incoming is not None and _SANE_ID.match(incoming):
            rid_bytes = incoming
            rid = incoming.decode("ascii")
        else:
            self._count += 1
            rid = f"{self._prefix}{self._count:012x}"
            rid_bytes = rid.encode("ascii")
        scope["request_id"] = rid
        self.metrics.in_flight += 1
        status = 500
        status_sent: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status = status_sent = message["status"]
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID, rid_bytes)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette re-raises what its last-resort handler answered (a logged 500): the
            # answer is sent, so the server need not log it again, with a traceback.
            if status_sent is None:
                raise
        finally:
            self.metrics.in_flight -= 1
            seconds = time.perf_counter() - start
            route = scope.get("route_template", UNMATCHED)
            self.metrics.observe(route, scope["method"], status, seconds)
            if self.log is not None:
                self.log.write(
                    rid, scope["method"], route, status, seconds, scope.get("tenant_api_key", "")
                )
