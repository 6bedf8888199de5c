"""A webhook receiver: an HTTP server on a loopback port, in a thread, that records every
request and checks every signature as a Vonage application would (docs/messages.md): the
`Authorization: Bearer <JWT>` is HS256 with the tenant's signature secret and its
`payload_hash` is the SHA-256 of the body received. The pytest plugin's `webhook_receiver`
fixture and `chatapp-accounts webhooks receive` are both this class.

Nothing here prints a secret or a token: a Delivery's repr masks its Authorization header.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..security.webhooks import check_signature

MASK = "***"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True)
class Verdict:
    """What the signature check said: `checked` False when no secret was known."""

    checked: bool
    ok: bool
    reason: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.checked:
            return f"signature not checked ({self.reason})"
        return "signature verified" if self.ok else f"signature did not verify: {self.reason}"


def verify_webhook(body: bytes, authorization: str | None, secret: str) -> Verdict:
    """Is this webhook signed with `secret` over exactly `body`? The verdict says why not
    (security/webhooks.py check_signature, the server's own check)."""
    check = check_signature(authorization, body, secret)
    return Verdict(True, check.verified, check.reason or "", check.claims)


def unverified_claims(authorization: str | None) -> dict[str, Any]:
    """The claims of a webhook's JWT, unchecked: to find which tenant's secret checks it."""
    return check_signature(authorization, b"", None).claims


def clock(at: float) -> str:
    """A time.time() as local HH:MM:SS.mmm."""
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def masked(headers: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()}


@dataclass(frozen=True, repr=False)
class Delivery:
    """One request the receiver got. `path` is below the receiver's own prefix (`/status` for
    `receiver.url("/status")`); `json` the parsed body (None if it is not JSON); `received_at`
    time.time(); `answered` the status code sent back (None: never answered)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    verdict: Verdict
    answered: int | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def _field(self, name: str) -> Any:
        return self.json.get(name) if isinstance(self.json, dict) else None

    @property
    def message_uuid(self) -> str | None:
        value = self._field("message_uuid")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        """A status webhook's `status` (None for an inbound message)."""
        value = self._field("status")
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """An inbound message's `message_type` (None for a status)."""
        value = self._field("message_type")
        return value if isinstance(value, str) else None

    @property
    def kind(self) -> str:
        return "status" if self.status is not None else "inbound"

    @property
    def text(self) -> str | None:
        value = self._field("text")
        return value if isinstance(value, str) else None

    @property
    def verified(self) -> bool | None:
        """True or False once checked; None when no secret was known to check it with."""
        return self.verdict.ok if self.verdict.checked else None

    def summary(self) -> str:
        what = self.status or self.message_type or "-"
        return f"{self.method} {self.path} {self.message_uuid or '-'} {what}"

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"Delivery(method={self.method!r}, path={self.path!r}, "
            f"headers={masked(self.headers)!r}, body={body!r}, "
            f"received_at={self.received_at!r}, verdict={self.verdict.describe()!r}, "
            f"answered={self.answered!r})"
        )


@dataclass
class _Answer:
    status: int
    delay: float
    hang: bool
    times: int | None
    path: str | None


Predicate = Callable[[Delivery], bool]


def matcher(
    predicate: Predicate | None = None,
    *,
    path: str | None = None,
    message_uuid: str | None = None,
    status: str | None = None,
    message_type: str | None = None,
) -> tuple[Predicate, str]:
    """A predicate from the filters (all must hold) and words that say what it waits for."""
    said = [f"{k}={v!r}" for k, v in (("path", path), ("message_uuid", message_uuid),
            ("status", status), ("message_type", message_type)) if v is not None]  # fmt: skip
    if predicate is not None:
        said.append(getattr(predicate, "__name__", "predicate"))

    def match(d: Delivery) -> bool:
        return (
            (path is None or d.path == path)
            and (message_uuid is None or d.message_uuid == message_uuid)
            and (status is None or d.status == status)
            and (message_type is None or d.message_type == message_type)
            and (predicate is None or predicate(d))
        )

    return match, "a webhook with " + (", ".join(said) if said else "anything")


class WebhookReceiver:
    """Records every request to `url(...)`; verifies each signature with `signature_secret`,
    or else with `secret_for(api_key claim)`; answers as `respond(...)` says (200 by default).

    `prefix`: a path of this receiver's own in front of every URL it gives (so a webhook still
    retried to a port that an earlier receiver had is not taken for one of this receiver's)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "",
        signature_secret: str | None = None,
        secret_for: Callable[[str], str | None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.signature_secret = signature_secret
        self.secret_for = secret_for
        self.on_delivery = on_delivery
        # Says more when a wait fails (the plugin: the server's attempts to this receiver).
        self.explain: Callable[[], str] | None = None
        self.prefix = prefix.rstrip("/")
        self.deliveries: list[Delivery] = []
        self.strays: list[Delivery] = []  # requests outside the prefix: answered 404
        self.unmet: list[str] = []  # waits and expectations that were not met
        self._expected: list[tuple[Predicate, str, float]] = []
        self._answers: list[_Answer] = []
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chatapp-webhook-receiver", daemon=True
        )
        self._thread.start()
        self.host = host
        self.port: int = self._server.server_address[1]

    @classmethod
    def with_random_prefix(cls, **options: Any) -> WebhookReceiver:
        return cls(prefix="/hooks-" + secrets.token_hex(4), **options)

    @property
    def base_url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}{self.prefix}"

    def url(self, path: str = "") -> str:
        """The URL of `path` on this receiver (give it to an application's webhooks)."""
        if path and not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    # -- answers --

    def respond(
        self,
        status: int = 200,
        *,
        delay: float = 0.0,
        hang: bool = False,
        times: int | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next requests (`times` of them, or all; of `path` only, if given) with
        `status` after `delay` seconds; `hang=True`: never answer (the sender times out)."""
        with self._changed:
            self._answers.append(_Answer(status, delay, hang, times, path))

    def _answer_for(self, path: str) -> _Answer:
        with self._changed:
            for answer in reversed(self._answers):
                if answer.path is None or answer.path == path:
                    if answer.times is not None:
                        answer.times -= 1
                        if answer.times <= 0:
                            self._answers.remove(answer)
                    return answer
        return _Answer(200, 0.0, False, None, None)

    # -- what was received --

    def received(self, predicate: Predicate | None = None, **filters: Any) -> list[Delivery]:
        match, _ = matcher(predicate, **filters)
        with self._changed:
            return [d for d in self.deliveries if match(d)]

    def statuses(self, message_uuid: str) -> list[str]:
        """The statuses received for a message, in order of arrival."""
        return [d.status for d in self.received(message_uuid=message_uuid) if d.status]

    def wait_for_webhook(
        self, predicate: Predicate | None = None, *, timeout: float = 10.0, **filters: Any
    ) -> Delivery:
        """The first delivery that matches (already received, or the first to come within
        `timeout` seconds). Filters: path, message_uuid, status, message_type. Not met: an
        AssertionError that says what came instead (and the test fails at its end too)."""
        match, said = matcher(predicate, **filters)
        found = self._wait(match, timeout)
        if found is None:
            problem = f"{said} did not come within {timeout} s"
            with self._changed:
                self.unmet.append(problem)
            more = self.explain() if self.explain is not None else ""
            raise AssertionError(
                problem + "; received:\n" + self.describe_received() + ("\n" + more if more else "")
            )
        return found

    def wait_for_status(self, message_uuid: str, status: str, timeout: float = 10.0) -> Delivery:
        return self.wait_for_webhook(message_uuid=message_uuid, status=status, timeout=timeout)

    async def wait_for_webhook_async(
        self, predicate: Predicate | None = None, *, timeout: float = 10.0, **filters: Any
    ) -> Delivery:
        return await asyncio.to_thread(self.wait_for_webhook, predicate, timeout=timeout, **filters)

    async def wait_for_status_async(
        self, message_uuid: str, status: str, timeout: float = 10.0
    ) -> Delivery:
        return await asyncio.to_thread(self.wait_for_status, message_uuid, status, timeout)

    def expect_webhook(
        self, predicate: Predicate | None = None, *, timeout: float = 10.0, **filters: Any
    ) -> None:
        """A webhook that must come within `timeout` seconds from now; checked when the test
        ends (`check_expectations`), without waiting here."""
        match, said = matcher(predicate, **filters)
        with self._changed:
            self._expected.append((match, said, time.monotonic() + timeout))

    def check_expectations(self) -> list[str]:
        """Waits for what `expect_webhook` expects, each until its own deadline; the unmet ones,
        with those `wait_for_*` already found unmet."""
        with self._changed:
            expected, self._expected = list(self._expected), []
        for match, said, deadline in expected:
            if self._wait(match, max(0.0, deadline - time.monotonic())) is None:
                with self._changed:
                    self.unmet.append(f"{said} was expected and never came")
        with self._changed:
            return list(self.unmet)

    def bad_signatures(self) -> list[Delivery]:
        """Deliveries whose signature was checked and did not verify."""
        with self._changed:
            return [d for d in self.deliveries if d.verdict.checked and not d.verdict.ok]

    def describe_received(self) -> str:
        with self._changed:
            seen = list(self.deliveries)
        if not seen:
            return "  (nothing)"
        return "\n".join(
            f"  {clock(d.received_at)}  {d.summary()}  "
            f"answered {d.answered if d.answered is not None else 'never'}  "
            f"({d.verdict.describe()})"
            for d in seen
        )

    def _wait(self, match: Predicate, timeout: float) -> Delivery | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((d for d in self.deliveries if match(d)), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self._changed.wait(left)

    # -- the server --

    def _verdict(self, body: bytes, authorization: str | None) -> Verdict:
        secret = self.signature_secret
        if secret is None and self.secret_for is not None:
            if not authorization:
                return verify_webhook(body, authorization, "")  # unsigned: says so
            api_key = unverified_claims(authorization).get("api_key")
            secret = self.secret_for(api_key) if isinstance(api_key, str) else None
            if secret is None:
                return Verdict(
                    True,
                    False,
                    f"no signature secret is known for its api_key {api_key!r} (a tenant not "
                    "made by chatapp.tenant(): set webhook_receiver.signature_secret)",
                )
        if secret is None:
            return Verdict(False, False, "no signature secret given")
        return verify_webhook(body, authorization, secret)

    def _record(self, delivery: Delivery, stray: bool) -> None:
        with self._changed:
            (self.strays if stray else self.deliveries).append(delivery)
            self._changed.notify_all()
        if self.on_delivery is not None and not stray:
            self.on_delivery(delivery)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = 0
                body = self.rfile.read(length) if length > 0 else b""
                headers = dict(self.headers.items())
                raw_path = self.path.split("?", 1)[0]
                stray = bool(receiver.prefix) and not (
                    raw_path == receiver.prefix or raw_path.startswith(receiver.prefix + "/")
                )
                path = raw_path if stray else raw_path[len(receiver.prefix) :] or "/"
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                verdict = receiver._verdict(body, headers.get("Authorization"))
                answer = (
                    _Answer(404, 0.0, False, None, None) if stray else receiver._answer_for(path)
                )
                status = None if answer.hang else answer.status
                receiver._record(
                    Delivery(self.command, path, headers, body, parsed, time.time(), verdict,
                             status),
                    stray,
                )  # fmt: skip
                if answer.hang:
                    receiver._closing.wait()  # until the receiver closes: the sender times out
                    self.close_connection = True
                    return
                if answer.delay > 0 and receiver._closing.wait(answer.delay):
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
