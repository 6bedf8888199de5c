"""The serving protocol's transport: what one turn of the event loop writes goes out in one write
(the live-server tests in tests/e2e run every request through it)."""

from __future__ import annotations

import asyncio
from typing import Any

from chatapp_accounts.server import CoalescingTransport, HttpProtocol, uvicorn_options


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def write_eof(self) -> None:
        self.eof = True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else None


def test_one_turns_writes_go_out_in_one_write_on_the_next_turn() -> None:
    async def scenario() -> list[bytes]:
        real = FakeTransport()
        t: Any = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.writelines([b"o", b"k"])
        assert real.writes == []  # nothing yet: the turn is not over
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
        t.write(b"next")
        await asyncio.sleep(0)
        assert t.get_extra_info("peername") == ("127.0.0.1", 1234)  # the transport's own
        return real.writes

    assert asyncio.run(scenario())[1:] == [b"next"]


def test_close_and_eof_flush_first_and_a_closed_transport_gets_nothing() -> None:
    async def scenario() -> FakeTransport:
        real = FakeTransport()
        t: Any = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"last answer")
        t.close()
        assert real.writes == [b"last answer"] and real.closed
        t.write(b"after close")
        await asyncio.sleep(0)  # the scheduled flush finds the transport closing: dropped
        return real

    assert asyncio.run(scenario()).writes == [b"last answer"]

    async def eof() -> FakeTransport:
        real = FakeTransport()
        t: Any = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"body")
        t.write_eof()
        return real

    real = asyncio.run(eof())
    assert real.writes == [b"body"] and real.eof


def test_serve_and_the_ceiling_share_one_set_of_options() -> None:
    options = uvicorn_options(host="127.0.0.1", port=8000)
    assert options["http"] is HttpProtocol
    assert options["access_log"] is False and options["server_header"] is False
    assert options["proxy_headers"] is True and options["workers"] == 1
