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
# The wait for notifications ends this often, so that stop() never has to cancel it: a
# cancelled wait leaves psycopg's connection lock held, and closing the connection then hangs.
WAKE_SECONDS = 0.5


class Listener:
    def __init__(self, conninfo: str, wake: dict[str, Callable[[], None]]) -> None:
        self._conninfo = conninfo
        self._wake = wake  # NOTIFY channel -> what it wakes
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="listener")

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        if task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), 3 * WAKE_SECONDS + CONNECT_TIMEOUT)
        if not task.done():  # still connecting: nothing of psycopg's is held yet
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the polls go on meanwhile
                log.warning(
                    "LISTEN connection lost (%s); again in %.0f s", type(exc).__name__,
                    RECONNECT_SECONDS,
                )  # fmt: skip
            for _ in range(int(RECONNECT_SECONDS / WAKE_SECONDS)):
                if self._stopping:
                    return
                await asyncio.sleep(WAKE_SECONDS)

    async def _listen(self) -> None:
        conn: Any = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
        try:
            for channel in self._wake:
                await conn.execute(f"LISTEN {channel}")
            while not self._stopping:
                async for notify in conn.notifies(timeout=WAKE_SECONDS):
                    wake = self._wake.get(notify.channel)
                    if wake is not None:
                        wake()
        finally:
            await conn.close()
