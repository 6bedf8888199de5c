"""Each process's side of the tenants' limits (docs/limits.md).

A request is admitted or refused here, in memory: it never waits on the database. The process
spends tokens it claimed beforehand from the count every process shares (storage/limits.py,
one atomic statement per claim): what all processes claim in a second never adds up to more
than the tenant's limit. A background task claims every `INTERVAL` seconds, for each tenant
and API in use: for the current second while the process holds less than two intervals' worth
of its recent rate, and as much for the next second, so a new second starts with tokens.

A request that finds no tokens goes on credit while the process has admitted less than the
limit in this second and no claim came back short: the next claim, made at once, pays it
back. A tenant's first burst is not refused for want of a claim; nor is one that outgrows the
tokens claimed for it. That is the one way a second can admit more than the limit: when
several processes take requests on credit at the same time and the limit runs out under them,
by what they admit in the time a claim takes (at most the limit each). A tenant held at its
limit spends the tokens claimed for it, never credit (the next second's claims come back short
beforehand). Its limit is its own (read every second) or the default; each claim brings it.

Once a claim comes back short, the second is spent: the rest of it is refused here, at no cost
to the database."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from ..delivery.loop import cancel_loop, wait_for_wake
from ..domain.errors import Throttled
from ..domain.limits import Claim, Taken, limit_of
from ..domain.models import TenantLimits

log = logging.getLogger("chatapp_accounts.limits")
INTERVAL = 0.1  # seconds between claims
_READ_EVERY = 1.0  # seconds between readings of the tenants' own limits
_PURGE_EVERY = 5.0  # seconds between deletions of the seconds gone by
_KEEP = 5  # seconds kept in the database (for looking into)


class Store(Protocol):
    async def claim(self, claims: Sequence[Claim]) -> dict[Claim, Taken]: ...

    async def overrides(self) -> dict[int, TenantLimits]: ...

    async def purge(self, before: int) -> int: ...


class _Key:
    """One tenant's use of one API in this process: tokens of the current second and of the
    next, requests admitted and seen in this second, seen in the one before."""

    __slots__ = ("admitted", "debt", "done", "limit", "next_done", "next_tokens", "second", "seen",
                 "seen_before", "tokens")  # fmt: skip

    def __init__(self, second: int, limit: int) -> None:
        self.second = second
        self.limit = limit
        self.tokens = self.next_tokens = self.debt = self.admitted = 0
        self.seen = self.seen_before = 0
        self.done = self.next_done = False

    def roll(self, second: int) -> None:
        follows = second == self.second + 1
        self.tokens, self.done = (self.next_tokens, self.next_done) if follows else (0, False)
        self.seen_before = self.seen if follows else 0
        self.next_tokens, self.next_done = 0, False
        self.seen = self.debt = self.admitted = 0
        self.second = second


class Limiter:
    def __init__(
        self,
        store: Store,
        requests: int,
        messages: int,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        """`requests`, `messages`: the default limits (domain.limits.limit_of)."""
        self._store = store
        self._defaults = (requests, messages)
        self._clock = clock
        self._on_refused = on_refused
        self._keys: dict[tuple[int, str], _Key] = {}
        self._own: dict[int, TenantLimits] = {}  # the tenants' own limits, read every second
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake: asyncio.Event | None = None  # a request on credit: claim without waiting

    def admit(self, tenant_id: int, api: str) -> None:
        """Count a request: Throttled when the tenant's second on `api` is spent."""
        now = self._clock()
        second = int(now)
        key = self._keys.get((tenant_id, api))
        if key is None:
            key = self._keys[(tenant_id, api)] = _Key(second, self._limit_of(tenant_id, api))
        elif key.second != second:
            key.roll(second)
        key.seen += 1
        if key.tokens > 0:
            key.tokens -= 1
            key.admitted += 1
            return
        if not key.done and key.admitted < key.limit:
            key.debt += 1  # on credit, until the next claim, made now
            key.admitted += 1
            if self._wake is not None:
                self._wake.set()
            return
        raise self._refusal(api, key, now)

    def refuse_if_spent(self, tenant_id: int, api: str) -> None:
        """Throttled if `admit` would refuse the tenant's next request on `api` now, counting
        nothing else: a request refused before its credentials are checked again."""
        key = self._keys.get((tenant_id, api))
        if key is None:
            return
        now = self._clock()
        if key.second != int(now):
            key.roll(int(now))
        if key.tokens > 0 or (not key.done and key.admitted < key.limit):
            return
        key.seen += 1
        raise self._refusal(api, key, now)

    def _refusal(self, api: str, key: _Key, now: float) -> Throttled:
        if self._on_refused is not None:
            self._on_refused(api)
        return Throttled(key.second + 1 - now, key.limit, float(key.second + 1))

    def limit(self, tenant_id: int, api: str) -> int:
        key = self._keys.get((tenant_id, api))
        return key.limit if key is not None else self._limit_of(tenant_id, api)

    def _limit_of(self, tenant_id: int, api: str) -> int:
        return limit_of(self._own.get(tenant_id), api, *self._defaults)

    async def read_overrides(self) -> None:
        """The tenants' own limits, as the database has them now."""
        self._own = await self._store.overrides()

    async def sync(self) -> None:
        """One round of claims, for every tenant and API in use (forgetting those not)."""
        now = self._clock()
        second = int(now)
        claims: list[Claim] = []
        for (tenant_id, api), key in list(self._keys.items()):
            if key.second != second:
                key.roll(second)
            if not key.seen and not key.seen_before:
                del self._keys[(tenant_id, api)]
                continue
            rate = max(key.seen_before, key.seen / max(now - second, INTERVAL))
            hold = math.ceil(rate * INTERVAL * 2) + 1
            if not key.done and (key.debt or key.tokens < hold):
                want = key.debt + max(0, hold - key.tokens)
                claims.append(Claim(tenant_id, api, second, want))
            if not key.next_done and key.next_tokens < hold:
                claims.append(Claim(tenant_id, api, second + 1, hold - key.next_tokens))
        if not claims:
            return
        for claim, taken in (await self._store.claim(claims)).items():
            found = self._keys.get((claim.tenant_id, claim.api))
            if found is None:
                continue
            key = found
            key.limit = taken.limit
            short = taken.granted < claim.want
            if claim.second == key.second:
                paid = min(key.debt, taken.granted)
                key.debt -= paid
                key.tokens += taken.granted - paid
                if short:
                    key.done = True
            elif claim.second == key.second + 1:
                key.next_tokens += taken.granted
                key.next_done = key.next_done or short

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="limits")

    async def stop(self) -> None:
        self._stopping = True
        await cancel_loop(self._task)
        self._task = None

    async def _run(self) -> None:
        purged = read = 0.0
        while not self._stopping:
            try:
                now = self._clock()
                if now - read >= _READ_EVERY:
                    read = now
                    await self.read_overrides()
                await self.sync()
                if now - purged >= _PURGE_EVERY:
                    purged = now
                    await self._store.purge(int(now) - _KEEP)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - claim again at the next interval
                log.warning("claiming the tenants' limits failed: %s", type(exc).__name__)
                await asyncio.sleep(INTERVAL)
            await self._next_round()

    async def _next_round(self) -> None:
        """After INTERVAL, or at once when a request went on credit."""
        assert self._wake is not None
        await wait_for_wake(self._wake, INTERVAL)
        self._wake.clear()
