"""What the two fakes share, and nothing more: posting a callback with a provider's few retries
(and counting them), answering before the callbacks it causes start, the hang used by the
`...0999` recipients, and a few small wire helpers. Not a base class: each fake owns one of
each helper."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import ssl as ssl_
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
