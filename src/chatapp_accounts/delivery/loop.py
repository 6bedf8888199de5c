"""What the sender and the dispatcher share about their loops: sleeping until woken or a poll
interval passes, and winding down at stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..domain.errors import ServiceUnavailable


async def run_turn(name: str, log: logging.Logger, turn: Callable[[], Awaitable[bool]]) -> bool:
    """A turn: whether it found work. One that fails is logged (a line, without a traceback,
    when the database cannot be reached) and the next waits a second."""
    try:
        return await turn()
    except ServiceUnavailable:
        log.warning("%s: the database cannot be reached; retrying in 1 s", name)
    except Exception:
        log.exception("%s turn failed; retrying in 1 s", name)
    await asyncio.sleep(1)
    return False


async def wait_for_wake(wake: asyncio.Event, seconds: float) -> None:
    """Until `wake` is set or `seconds` pass. (asyncio.timeout, not wait_for: Python 3.11's
    wait_for can swallow a cancellation that meets its own completion, and a loop would outlive
    its stop.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


async def cancel_loop(loop: asyncio.Task[None] | None) -> None:
    """Cancel a loop's task and wait for it 5 s at most: a cancellation swallowed on its way
    (Python 3.11's wait_for, in a connection pool's) must not hang a shutdown. The loops also
    check a flag of their own, set first, and end at their next turn."""
    if loop is not None:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(loop, 5)


async def wind_down(
    loop: asyncio.Task[None] | None,
    in_flight: set[asyncio.Task[None]],
    grace: float,
    last_turn: Callable[[], Awaitable[object]],
) -> None:
    """Stop a loop, give the tasks it started `grace` seconds to end, then record what they
    did in a last turn (a task still running is left to its lease)."""
    await cancel_loop(loop)
    if in_flight:
        await asyncio.wait(in_flight, timeout=grace)
    with contextlib.suppress(Exception):
        await last_turn()
