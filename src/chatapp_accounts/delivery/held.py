"""Held statuses (docs/providers.md, "Callbacks"): a provider's status that came before the send
it is about was recorded is kept in the database; this task, in every process with a live
channel, applies those whose id is recorded now and drops those held for 60 s (counted), twice
a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..domain.callbacks import release_held
from ..domain.ports import UnitOfWorkFactory
from .loop import run_turn

log = logging.getLogger("chatapp_accounts.held")

INTERVAL = 0.5


class HeldStatuses:
    def __init__(self, uow_factory: UnitOfWorkFactory,
                 on_counts: Callable[[int, int, int], None] | None = None) -> None:  # fmt: skip
        self._uow_factory = uow_factory
        self._on_counts = on_counts
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="held-statuses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if not await run_turn("held statuses", log, self._turn):
                await asyncio.sleep(INTERVAL)  # (while some were ready, at once again)

    async def _turn(self) -> bool:
        counts = await release_held(self._uow_factory)
        if self._on_counts is not None and any(counts):
            self._on_counts(*counts)
        return bool(counts[0] or counts[1])
