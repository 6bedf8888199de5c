"""Wake-ups across processes on PostgreSQL: a connection of its own LISTENs on the channels the
write batches NOTIFY (uow.CHANNELS) when they write send jobs or webhooks, and wakes this
process's sender or dispatcher at once. Without it (SQLite, or when LISTEN is not possible: a
PgBouncer in transaction mode passes NOTIFY but not LISTEN), other processes' work is found by
the senders' and dispatcher's polls (a quarter of a second)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from .engine import CONNECT_TIMEOUT

log = logging.getLogger("chatapp_accounts.storage")
RECONNECT_SECONDS = 5.0


class Listener:
    def __init__(self, conninfo: str, wake: dict[str, Callable[[], None]]) -> None:
        self._conninfo = conninfo
        self._wake = wake  # NOTIFY channel -> what it wakes
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the polls go on meanwhile
                log.warning(
                    "LISTEN connection lost (%s); again in %.0f s", type(exc).__name__,
                    RECONNECT_SECONDS,
                )  # fmt: skip
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        conn: Any = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
        async with conn:
            for channel in self._wake:
                await conn.execute(f"LISTEN {channel}")
            async for notify in conn.notifies():
                wake = self._wake.get(notify.channel)
                if wake is not None:
                    wake()
