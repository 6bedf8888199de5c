"""Back-pressure: the due backlog of every process (send jobs and webhooks due now; those
waiting on a retry time are not due), read every `INTERVAL` seconds. While it is past its bound,
`refuse()` tells the send use case to answer 429: the server says it cannot keep up rather than
accept what it cannot deliver. Its figures are the `chatapp_backlog` metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..domain.messages import send_backlog
from ..storage.uow import SqlUnitOfWorkFactory
from .loop import cancel_loop

log = logging.getLogger("chatapp_accounts.backlog")
INTERVAL = 0.5
RETRY_AFTER = 1.0  # seconds: a backlog past its bound drains in about that at full speed


class Backlog:
    def __init__(
        self,
        uow_factory: SqlUnitOfWorkFactory,
        bound: int,
        on_stats: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._bound = bound
        self._on_stats = on_stats
        self.due = 0  # send jobs and webhooks due, at the last reading
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def refuse(self) -> float | None:
        return RETRY_AFTER if self.due > self._bound else None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="backlog")

    async def stop(self) -> None:
        self._stopping = True
        await cancel_loop(self._task)

    async def read(self) -> None:
        now = time.time()
        jobs, jobs_since = await send_backlog(self._uow_factory, now)
        async with self._uow_factory() as uow:
            hooks, hooks_since = await self._uow_factory.outbox.backlog(uow.conn, now)
        self.due = jobs + hooks
        if self._on_stats is not None:
            self._on_stats("send_job", jobs, now - jobs_since if jobs_since else 0.0)
            self._on_stats("webhook", hooks, now - hooks_since if hooks_since else 0.0)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - read again at the next interval
                log.warning("reading the backlog failed: %s", type(exc).__name__)
            await asyncio.sleep(INTERVAL)
