"""The live channels' HTTP client (aiohttp, the project's client): one session per provider and
process, its connections reused, at most `concurrency` at once; every call under a timeout (the
sender's own timeout also bounds it); an answer's body read up to 1 MiB (a provider that sends
more is answering something else: the rest is not read, the answer is a bad one).

A call either returns the provider's answer (any HTTP status) or raises `Unreachable` with a
reason fit for a status's detail (the exception's kind, never a URL, header or token). Each call
is counted: provider, outcome (ok, refused, unreachable) and latency (api/observability.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

MAX_BODY = 1024 * 1024
USER_AGENT = "chatapp-accounts/1"

OnCall = Callable[[str, str, float], None]  # (provider, outcome, seconds)


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    retry_after: str | None = None
    too_large: bool = False


class Unreachable(Exception):
    """No answer: the connection failed, timed out, or broke mid-answer."""


class ProviderClient:
    def __init__(self, provider: str, *, timeout: float, concurrency: int,
                 on_call: OnCall | None = None) -> None:  # fmt: skip
        self._provider = provider
        self._timeout = timeout
        self._concurrency = concurrency
        self._on_call = on_call
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency, limit_per_host=0),
                # A second past the sender's own timeout, which ends a send's try first (counted
                # as a timeout: the provider may have taken it); this one bounds the others.
                timeout=aiohttp.ClientTimeout(total=self._timeout + 1),
                headers={"User-Agent": USER_AGENT},
                raise_for_status=False,
                auto_decompress=True,
            )
        return self._session

    async def call(self, method: str, url: str, *, token: str | None = None,
                   json: Any = None, form: dict[str, str] | None = None) -> Answer:  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        started = time.perf_counter()
        outcome = "unreachable"
        try:
            async with self._open().request(
                method, url, headers=headers, json=json, data=form, allow_redirects=False
            ) as response:
                body = await response.content.read(MAX_BODY + 1)
                while len(body) <= MAX_BODY and not response.content.at_eof():
                    more = await response.content.read(MAX_BODY + 1 - len(body))
                    if not more:
                        break
                    body += more
                answer = Answer(
                    response.status,
                    body[:MAX_BODY],
                    response.headers.get("Retry-After"),
                    len(body) > MAX_BODY,
                )
            outcome = "ok" if 200 <= answer.status < 300 else "refused"
            return answer
        except TimeoutError:
            raise Unreachable("no answer in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(f"connection failed ({type(exc).__name__})") from None
        finally:
            if self._on_call is not None:
                self._on_call(self._provider, outcome, time.perf_counter() - started)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
