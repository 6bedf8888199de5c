"""How the service is served: uvicorn, with its httptools protocol writing once per turn.

uvicorn's protocol writes a response's status line and headers, then its body: two writes, each
waking the client. Profiled under load (perf, docs/benchmark.md), the kernel's wake-ups were a
quarter of the server's time, and they break up the event loop's batches: the client is woken
after every write and its next request interrupts the server mid-batch. Here the protocol's
transport keeps what is written during one turn of the event loop and writes it at the start of
the next turn, in one write per connection: the requests that arrived together are answered
together. The answers wait only for the turn to end, never for a timer. Nothing else of
uvicorn changes.

`uvicorn_options` is the one place the server's options are decided: `chatapp-accounts serve`
and the benchmark's ceiling (bench/ceiling.py) both use it, so they are served alike.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes are joined and written by `flush`, which the first write
    schedules for the next turn of the event loop."""

    __slots__ = ("_buffer", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._buffer.append(data)
        if len(self._buffer) == 1:
            self._loop.call_soon(self.flush)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, over a CoalescingTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)


def check_can_listen(host: str, port: int) -> None:
    """Bind every address `host` names on `port`, as the server will, and let go at once: an
    address that cannot be bound or a port in use is an OSError here, said in one line, rather
    than uvicorn's log and exit once serving has begun."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def uvicorn_options(
    *,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "info",
    forwarded_allow_ips: str = "127.0.0.1",
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": log_level,
        "http": HttpProtocol,
        "server_header": False,
        "access_log": False,  # the app logs one structured line per request itself
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
    }
