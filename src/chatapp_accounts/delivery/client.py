"""The HTTP side of a webhook attempt: aiohttp's client, one session per process, at most
`concurrency` connections in all and `per_destination` to any one host.

With `deny_private`, loopback, private, link-local and other non-public addresses are refused:
a URL's literal address before connecting, a host name's through the resolver (the addresses
that are connected to are the ones it returns, all of them checked)."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ..domain.rules import retry_after_seconds
from ..domain.webhooks import ANSWER_KEPT, Outcome

USER_AGENT = "chatapp-accounts-webhooks/1"


def request_headers(authorization: str) -> dict[str, str]:
    """The headers of every webhook request: what is sent, and what its attempt keeps."""
    return {
        "Content-Type": "application/json",
        "Authorization": authorization,
        "User-Agent": USER_AGENT,
    }


def is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's own resolver, keeping only public addresses."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public(r["host"])]
        if not public:
            raise OSError(f"{host} resolves to no public address (CHATAPP_WEBHOOK_DENY_PRIVATE)")
        return public

    async def close(self) -> None:
        await self._inner.close()


class WebhookClient:
    def __init__(
        self, *, timeout: float, deny_private: bool, concurrency: int, per_destination: int
    ) -> None:
        self._timeout = timeout
        self._deny_private = deny_private
        self._limits = (concurrency, per_destination)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            concurrency, per_destination = self._limits
            resolver: Any = PublicOnlyResolver() if self._deny_private else None
            connector = aiohttp.TCPConnector(
                limit=concurrency, limit_per_host=per_destination, resolver=resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def post(self, url: str, body: bytes, authorization: str) -> Outcome:
        """POST the body with `request_headers(authorization)`."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Outcome(None, f"not an http(s) URL: {url!r}", permanent=True)
        if self._deny_private:
            try:
                ipaddress.ip_address(parts.hostname)
                literal = True
            except ValueError:
                literal = False
            if literal and not is_public(parts.hostname):
                refused = f"{parts.hostname} is not public (CHATAPP_WEBHOOK_DENY_PRIVATE)"
                return Outcome(None, refused, permanent=True)
        headers = request_headers(authorization)
        try:
            async with self._open().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = (await response.read())[:ANSWER_KEPT]
                return Outcome(
                    response.status,
                    None if response.status < 300 else f"answered {response.status}",
                    retry_after_seconds(response.headers.get("Retry-After"), time.time()),
                    answer=answer.decode("utf-8", "replace"),
                )
        except TimeoutError:
            return Outcome(None, f"no answer within {self._timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if parts.password:  # a URL's credentials reach neither a log nor a listing
                error = error.replace(parts.password, "***")
            return Outcome(None, error[:300])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
