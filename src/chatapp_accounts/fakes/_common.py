"""What the two fakes share, and nothing more: `FakeServer`, the base class of `MetaFake` and
`RbmFake` (the aiohttp server's lifecycle, the request log, `latency`, throttles, the shared
`/_fake/` control routes, the injected 502/503/hang answers); posting a callback with a
provider's few retries (and counting them); answering before the callbacks it causes start;
the hang used by the `...0999` recipients; and a few small wire helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import inspect
import json
import secrets
import ssl as ssl_
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypedDict, TypeVar, overload

import aiohttp
from aiohttp import web

CALLBACK_TRIES = 3
CALLBACK_BACKOFF_SECONDS = 0.1  # then 0.2: "a few tries, short backoff"
CALLBACK_TIMEOUT_SECONDS = 10.0
MASK = "***"


@dataclass(frozen=True)
class CallbackOutcome:
    """What one callback came to: the last HTTP status the receiver answered (0: no answer,
    e.g. connection refused or timeout), how many tries it took, and whether it was
    acknowledged (2xx). `id` is the provider id it concerns (a wamid, a mid, an RBM event or
    message id), or "" when there is none."""

    id: str
    status: int
    tries: int
    acknowledged: bool


@dataclass
class CallbackStats:
    """Counters: `sent` callbacks (each counted once however many tries), `attempts` (HTTP
    requests made), `acknowledged` (ended 2xx), `failed` (gave up after the last try)."""

    sent: int = 0
    attempts: int = 0
    acknowledged: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "callbacks_sent": self.sent,
            "callback_attempts": self.attempts,
            "callbacks_acknowledged": self.acknowledged,
            "callbacks_failed": self.failed,
        }


@dataclass
class CallbackPoster:
    """POSTs signed callbacks to one URL; up to `tries` tries on a non-2xx answer or a
    connection error, waiting `backoff`, then twice that. Background posts run as tasks that
    `drain()` awaits and `close()` cancels."""

    url: str | None
    tries: int = CALLBACK_TRIES
    backoff: float = CALLBACK_BACKOFF_SECONDS
    timeout: float = CALLBACK_TIMEOUT_SECONDS
    ssl: ssl_.SSLContext | None = None  # whom an https callback URL is trusted by (a test CA)
    stats: CallbackStats = field(default_factory=CallbackStats)
    log: list[dict[str, Any]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl is not None else None
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), connector=connector
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run `coroutine` in the background (callbacks after an answer)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every background callback has ended (acknowledged or given up)."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("callbacks still pending")
            await asyncio.wait(list(self._tasks), timeout=left)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def post(
        self, body: bytes, headers: Mapping[str, str], *, id: str = ""
    ) -> CallbackOutcome:
        """POST `body` with `headers` (plus `Content-Type: application/json`), retrying."""
        if self.url is None or self._session is None:
            raise RuntimeError("no callback URL (or the fake is not started)")
        self.stats.sent += 1
        status = 0
        tries = 0
        sent_headers = {"Content-Type": "application/json", **headers}
        for tries in range(1, self.tries + 1):
            self.stats.attempts += 1
            try:
                async with self._session.post(self.url, data=body, headers=sent_headers) as got:
                    await got.read()
                    status = got.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if 200 <= status < 300:
                break
            if tries < self.tries:
                await asyncio.sleep(self.backoff * 2 ** (tries - 1))
        acknowledged = 200 <= status < 300
        if acknowledged:
            self.stats.acknowledged += 1
        else:
            self.stats.failed += 1
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        self.log.append({"id": id, "body": parsed, "status": status, "tries": tries})
        return CallbackOutcome(id=id, status=status, tries=tries, acknowledged=acknowledged)


class Hangs:
    """Holds the requests that never answer (the `...0999` recipients) until the fake stops."""

    def __init__(self) -> None:
        self._released = asyncio.Event()

    async def hang(self) -> None:
        await self._released.wait()

    def release(self) -> None:
        self._released.set()

    def reset(self) -> None:
        self._released = asyncio.Event()


async def answer_now(request: web.Request, response: web.Response) -> web.Response:
    """Write `response` to the client before returning it, so that what is spawned next (a
    status callback) starts after the answer is on the wire."""
    await response.prepare(request)
    await response.write_eof()
    return response


def compact_json(value: Any) -> bytes:
    """JSON as the providers send it: compact, non-ASCII escaped (`\\u00e4`)."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=compact_json(body),
        content_type="application/json",
        charset="UTF-8",
        headers=dict(headers or {}),
    )


def html_502(server: str) -> web.Response:
    """A 502 from the provider's front end: an HTML page, not JSON."""
    page = (
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
        f"<body><h1>502 Bad Gateway</h1><p>{server}: the server encountered a temporary "
        "error and could not complete your request.</p></body></html>\n"
    )
    return web.Response(status=502, text=page, content_type="text/html", charset="UTF-8")


def empty_503() -> web.Response:
    return web.Response(status=503, body=b"")


def control_error(message: str) -> web.Response:
    return json_answer(400, {"error": message})


async def control_body(request: web.Request) -> dict[str, Any]:
    """The JSON object of a `/_fake/` request ({} when there is no body)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a JSON object is expected")
    return value


def random_digits(length: int) -> str:
    return str(secrets.randbelow(9) + 1) + "".join(
        str(secrets.randbelow(10)) for _ in range(length - 1)
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rfc3339(moment: float | None = None) -> str:
    """Google's timestamp form: `2024-05-01T12:00:00.123456Z`."""
    when = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def optional_float(body: Mapping[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a non-negative number")
    return float(value)


def required_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} (a non-empty string) is required")
    return value


def required_strs(body: Mapping[str, Any], *keys: str) -> list[str]:
    """`required_str` of each key, in order."""
    return [required_str(body, key) for key in keys]


def fields_of(value: Any, *leave_out: str) -> dict[str, Any] | None:
    """A dataclass instance's fields as a dict, but for `leave_out`; None for None."""
    if value is None:
        return None
    return {k: v for k, v in dataclasses.asdict(value).items() if k not in leave_out}


def token_digest(token: str) -> str:
    """What the fakes keep of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class Switches(NamedTuple):
    """The after-send callbacks' switches: on or off, a `read` after the delivery, and the
    seconds before the first (Meta's `/_fake/statuses`, RBM's `/_fake/events`)."""

    enabled: bool
    read: bool
    delay: float

    def updated(self, body: Mapping[str, Any]) -> Switches:
        """These switches with what a `{"enabled","read","delay"}` body (each optional) says."""
        return Switches(
            bool(body["enabled"]) if "enabled" in body else self.enabled,
            bool(body["read"]) if "read" in body else self.read,
            optional_float(body, "delay") if "delay" in body else self.delay,
        )


ControlAnswer = web.StreamResponse | CallbackOutcome | None
ControlHandler = Callable[[dict[str, Any]], Awaitable[ControlAnswer]]
_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[ControlAnswer]])
_CONTROL_ROUTES: dict[object, tuple[str, str]] = {}  # handler function -> (method, path)


def control(method: str, path: str) -> Callable[[_Handler], _Handler]:
    """Make a fake's method `async (self, body) -> response` the handler of the `/_fake/`
    route `method path`: `FakeServer._routes()` adds it, with the JSON body parsed (`{}` for
    a GET or DELETE); None is answered 200 `{}`, a `CallbackOutcome` (once the callback the
    route sent ended) 200 `{"id","status","tries","acknowledged"}`, and a ValueError, KeyError
    or TypeError 400 `{"error"}`."""

    def mark(handler: _Handler) -> _Handler:
        _CONTROL_ROUTES[handler] = (method, path)
        return handler

    return mark


_T = TypeVar("_T")


class Alias(Generic[_T]):
    """A fake's own public name for an attribute of `FakeServer`'s (Meta's `statuses` and
    RBM's `events` are both `_after_send_on`)."""

    def __init__(self, target: str) -> None:
        self._target = target

    @overload
    def __get__(self, obj: None, owner: type) -> Alias[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: object | None, owner: type) -> Alias[_T] | _T:
        if obj is None:
            return self
        value: _T = getattr(obj, self._target)
        return value

    def __set__(self, obj: object, value: _T) -> None:
        setattr(obj, self._target, value)


class ServerOptions(TypedDict, total=False):
    """The constructor arguments every fake takes (`FakeServer`'s), with these defaults:
    `callback_url` None, `latency` 0.0, `read_receipts` False, `callback_tries` 3,
    `callback_backoff` 0.1, `callback_ssl` None."""

    callback_url: str | None
    latency: float
    read_receipts: bool
    callback_tries: int
    callback_backoff: float
    callback_ssl: ssl_.SSLContext | None


class FakeServer:
    """What each fake is around its provider routes: an aiohttp server on a loopback port
    (`start()`, `stop()`, `base_url`), the log of the requests its provider routes received
    (`requests`), the `latency` those answers wait, the callback poster (`callback_url`,
    `callbacks`, `drain()`), the held `...0999` requests, throttles, and the control routes
    every fake has:

    | route | does |
    |---|---|
    | `GET /_fake/requests` | `{"requests":[…]}` as `requests` has them |
    | `DELETE /_fake/requests` | forget them |
    | `GET /_fake/stats` | `stats()` |
    | `GET /_fake/callbacks` | `{"callbacks":[{id, body, status, tries}]}` |
    | `POST /_fake/latency` | `{"seconds": 0.2}` |
    | `POST /_fake/throttle` | `{_throttle_key: ID, "seconds": 30}` |
    | `POST` `_switches_path` | the after-send callbacks: `{"enabled": bool, "read": bool,`
      `"delay": seconds}` (each optional) |

    A fake takes `ServerOptions` as `**server` and passes them on with its after-send switches
    (`after_send`, `after_send_delay`); it names `_switches_path` and `_throttle_key` (and
    its public names of `_after_send_on` and `_after_send_delay`, as `Alias`es), marks its
    own `/_fake/` handlers with `@control(method, path)`, adds its provider routes in
    `_routes()` (after `super()._routes(app)`), starts what follows a send with
    `_after_answer()`, and adds its own counters in `_counters()`."""

    _switches_path: ClassVar[str]
    _throttle_key: ClassVar[str]

    def __init__(
        self,
        *,
        callback_url: str | None = None,
        latency: float = 0.0,
        read_receipts: bool = False,
        callback_tries: int = CALLBACK_TRIES,
        callback_backoff: float = CALLBACK_BACKOFF_SECONDS,
        callback_ssl: ssl_.SSLContext | None = None,
        after_send: bool = True,
        after_send_delay: float = 0.0,
    ) -> None:
        self.latency = latency
        self.read_receipts = read_receipts
        self._after_send_on = after_send  # callbacks after each send
        self._after_send_delay = after_send_delay  # seconds between a send's answer and them
        self._poster = CallbackPoster(
            callback_url, tries=callback_tries, backoff=callback_backoff, ssl=callback_ssl
        )
        self._requests: list[dict[str, Any]] = []
        self._throttled: dict[str, float] = {}  # account or agent -> monotonic end
        self._hangs = Hangs()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0: a free port); answers the bound port."""
        self._hangs.reset()
        app = web.Application()
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        await self._poster.open()
        return self._port

    async def stop(self) -> None:
        """Release hanging requests, stop listening, cancel callbacks still pending."""
        self._hangs.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._poster.close()

    @property
    def base_url(self) -> str:
        """`http://host:port` (Meta: append `/v21.0` for CHATAPP_META_GRAPH_URL; RBM:
        CHATAPP_RBM_URL)."""
        return f"http://{self._host}:{self._port}"

    @property
    def callback_url(self) -> str | None:
        return self._poster.url

    @callback_url.setter
    def callback_url(self, url: str | None) -> None:
        self._poster.url = url

    # -- control --------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """What the provider routes received, oldest first (copies; never a token)."""
        return [dict(r) for r in self._requests]

    def clear_requests(self) -> None:
        self._requests.clear()

    @property
    def callbacks(self) -> list[dict[str, Any]]:
        """Every callback sent: `{id, body (parsed), status, tries}`, in the order they ended."""
        return list(self._poster.log)

    def stats(self) -> dict[str, int]:
        """`requests`, the fake's own counters, the callback counters and
        `pending_callbacks`."""
        return {
            "requests": len(self._requests),
            **self._counters(),
            **self._poster.stats.as_dict(),
            "pending_callbacks": self._poster.pending,
        }

    def _counters(self) -> dict[str, int]:
        """A fake's own counters in `stats()`, after `requests`."""
        return {}

    @property
    def callbacks_sent(self) -> int:
        return self._poster.stats.sent

    @property
    def callbacks_acknowledged(self) -> int:
        return self._poster.stats.acknowledged

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the background callbacks (those after each send) to end."""
        await self._poster.drain(timeout)

    def set_latency(self, seconds: float) -> None:
        self.latency = seconds

    def _throttle(self, key: str, seconds: float) -> None:
        self._throttled[key] = time.monotonic() + seconds

    def _is_throttled(self, key: str) -> bool:
        return self._throttled.get(key, 0.0) > time.monotonic()

    # -- answering ------------------------------------------------------------------------

    async def _logged(
        self, record: dict[str, Any], answer: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Log a provider request's `record`, wait `latency`, answer, and note the answer's
        status in the record (None until then)."""
        self._requests.append(record)
        if self.latency:
            await asyncio.sleep(self.latency)
        response = await answer()
        record["status"] = response.status
        return response

    def _after_answer(self, callbacks: Callable[[], Awaitable[None]]) -> None:
        """Run `callbacks` (those that follow a send whose answer is written) in the
        background after `_after_send_delay` seconds, when they are on and there is a callback
        URL."""
        if self._after_send_on and self._poster.url is not None:
            self._poster.spawn(self._delayed(callbacks))

    async def _delayed(self, callbacks: Callable[[], Awaitable[None]]) -> None:
        if self._after_send_delay:
            await asyncio.sleep(self._after_send_delay)
        await callbacks()

    async def _special(self, injection: object, server: str) -> web.Response | None:
        """The answer of the injections both fakes have: `html_502` (from `server`),
        `empty_503`, `hang` (an empty 503 once the fake stops); None for any other."""
        if injection == "html_502":
            return html_502(server)
        if injection == "empty_503":
            return empty_503()
        if injection == "hang":
            await self._hangs.hang()
            return empty_503()
        return None

    async def _call_back(self, method: str, **kwargs: Any) -> tuple[int, str]:
        """One unsigned request to the callback URL, no retry (the webhooks' set-up
        handshakes); answers (status, body)."""
        url = self._poster.url
        if url is None:
            raise RuntimeError("no callback URL")
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.request(method, url, **kwargs) as got,
        ):
            return got.status, await got.text()

    # -- HTTP -----------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        """The `/_fake/` control routes: every `@control` method of this class and its bases
        (the bases' first; an override of a handler answers in its place)."""
        handlers: dict[tuple[str, str], str] = {}
        for cls in reversed(type(self).__mro__):
            for name, attr in vars(cls).items():
                if inspect.isfunction(attr) and attr in _CONTROL_ROUTES:
                    handlers[_CONTROL_ROUTES[attr]] = name
        for (method, path), name in handlers.items():
            app.router.add_route(method, path, self._control(getattr(self, name)))
        app.router.add_post(self._switches_path, self._control(self._c_switches))

    @staticmethod
    def _control(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                body = await control_body(request) if request.method == "POST" else {}
                answer = await handler(body)
            except (ValueError, KeyError, TypeError) as exc:
                return control_error(str(exc))
            if isinstance(answer, CallbackOutcome):
                return json_answer(200, dataclasses.asdict(answer))
            return json_answer(200, {}) if answer is None else answer

        return wrapped

    @control("GET", "/_fake/requests")
    async def _c_requests(self, _: dict[str, Any]) -> web.Response:
        return json_answer(200, {"requests": self.requests})

    @control("DELETE", "/_fake/requests")
    async def _c_clear(self, _: dict[str, Any]) -> None:
        self.clear_requests()

    @control("GET", "/_fake/stats")
    async def _c_stats(self, _: dict[str, Any]) -> web.Response:
        return json_answer(200, self.stats())

    @control("GET", "/_fake/callbacks")
    async def _c_callbacks(self, _: dict[str, Any]) -> web.Response:
        return json_answer(200, {"callbacks": self.callbacks})

    @control("POST", "/_fake/latency")
    async def _c_latency(self, body: dict[str, Any]) -> web.Response:
        self.set_latency(optional_float(body, "seconds"))
        return json_answer(200, {"seconds": self.latency})

    @control("POST", "/_fake/throttle")
    async def _c_throttle(self, body: dict[str, Any]) -> None:
        self._throttle(required_str(body, self._throttle_key), optional_float(body, "seconds"))

    async def _c_switches(self, body: dict[str, Any]) -> web.Response:
        now = Switches(self._after_send_on, self.read_receipts, self._after_send_delay)
        switches = now.updated(body)
        self._after_send_on, self.read_receipts, self._after_send_delay = switches
        return json_answer(200, switches._asdict())
