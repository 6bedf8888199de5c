"""The tenants' limits, each process's side (security/limits.py) against a store that counts as
the database's statement does (storage/limits.py), on a clock the test moves: what several
processes admit in a second, what they refuse and what the refusal says."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp_accounts.domain import limits
from chatapp_accounts.domain.errors import Throttled
from chatapp_accounts.domain.limits import Claim, Taken
from chatapp_accounts.domain.models import BasicCredentials, TenantLimits
from chatapp_accounts.security.limits import INTERVAL, Limiter
from chatapp_accounts.security.service import SecurityService


class Store:
    """rate_windows in memory: a claim adds `want` and gives back what was left of the limit."""

    def __init__(self, limit: int = 10, overrides: dict[int, int] | None = None) -> None:
        self.used: Counter[tuple[int, str, int]] = Counter()
        self.limit = limit
        self.overrides_ = overrides or {}
        self.claims = 0

    async def overrides(self) -> dict[int, TenantLimits]:
        return {t: TenantLimits(n, n) for t, n in self.overrides_.items()}

    async def claim(self, claims: Sequence[Claim]) -> dict[Claim, Taken]:
        self.claims += 1
        taken = {}
        for c in claims:
            limit = self.overrides_.get(c.tenant_id, self.limit)
            before = self.used[(c.tenant_id, c.api, c.second)]
            self.used[(c.tenant_id, c.api, c.second)] += c.want
            taken[c] = Taken(max(0, min(c.want, limit - before)), limit)
        return taken

    async def purge(self, before: int) -> int:
        return 0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _try(limiter: Limiter, tenant: int = 1, api: str = "accounts") -> bool:
    try:
        limiter.admit(tenant, api)
    except Throttled:
        return False
    return True


def _run(
    processes: int, limit: int, seconds: int, per_tick: int, start: float = 1000.0
) -> Counter[int]:
    """`processes` limiters on one store, each offered `per_tick` requests of tenant 1 every
    hundredth of a second and claiming every INTERVAL: what they admitted in each second."""
    store, clock = Store(limit), Clock(start)
    limiters = [Limiter(store, store.limit, store.limit, clock) for _ in range(processes)]
    admitted: Counter[int] = Counter()
    ticks_per_sync = round(INTERVAL / 0.01)
    for tick in range(seconds * 100):
        clock.now = start + tick * 0.01
        if tick % ticks_per_sync == 0:
            for limiter in limiters:
                asyncio.run(limiter.sync())
        for limiter in limiters:
            admitted[int(clock.now)] += sum(_try(limiter) for _ in range(per_tick))
    return admitted


def test_a_flood_is_held_to_the_limit_in_every_second_across_processes() -> None:
    admitted = _run(processes=3, limit=50, seconds=6, per_tick=5)  # 1,500/s offered
    first, *rest = sorted(admitted)
    # The first second may go past: each process's first requests go on credit, up to the limit.
    assert admitted[first] <= 3 * 50
    assert all(admitted[s] == 50 for s in rest), admitted  # then exactly the limit


def test_a_tenant_under_its_limit_is_never_refused() -> None:
    # 2 processes, 40/s each offered (one every 0.025 s on average), limit 100.
    store, clock = Store(100), Clock()
    a, b = (
        Limiter(store, store.limit, store.limit, clock),
        Limiter(store, store.limit, store.limit, clock),
    )
    refused = 0
    for tick in range(500):
        clock.now = 1000.0 + tick * 0.01
        if tick % 10 == 0:
            asyncio.run(a.sync())
            asyncio.run(b.sync())
        if tick % 5 == 0:
            refused += (not _try(a)) + (not _try(b))
    assert refused == 0


def test_a_refusal_says_the_limit_when_it_resets_and_how_long_to_wait() -> None:
    store, clock = Store(3, overrides={7: 2}), Clock(2000.25)
    limiter = Limiter(store, store.limit, store.limit, clock)
    asyncio.run(limiter.read_overrides())
    assert _try(limiter, 7) and _try(limiter, 7)  # a first second: its limit (2) on credit
    assert not _try(limiter, 7)
    asyncio.run(limiter.sync())  # the claim paid the credit back: nothing more this second
    with pytest.raises(Throttled) as refused:
        limiter.admit(7, "accounts")
    assert refused.value.limit == 2  # the tenant's own limit, learnt from the claim
    assert refused.value.reset_at == 2001.0 and refused.value.remaining == 0
    assert refused.value.retry_after == pytest.approx(0.75)
    assert not refused.value.backlog
    assert limiter.limit(7, "accounts") == 2 and limiter.limit(8, "accounts") == 3
    claims = store.claims
    asyncio.run(limiter.sync())
    assert store.claims == claims  # this second is spent, the next one's tokens are here
    clock.now = 2001.1
    assert _try(limiter, 7) and _try(limiter, 7)  # a new second, its tokens claimed before
    assert not _try(limiter, 7)


def test_apis_and_tenants_are_counted_apart() -> None:
    store, clock = Store(1), Clock()
    limiter = Limiter(store, store.limit, store.limit, clock)
    assert _try(limiter, 1, "accounts") and _try(limiter, 1, "messages")
    assert _try(limiter, 2, "accounts")
    assert not _try(limiter, 1, "accounts")


def test_a_tenant_idle_for_two_seconds_is_forgotten_then_starts_on_credit() -> None:
    store, clock = Store(10), Clock()
    limiter = Limiter(store, store.limit, store.limit, clock)
    assert _try(limiter)
    for now in (1000.5, 1001.5, 1002.5):
        clock.now = now
        asyncio.run(limiter.sync())
    assert limiter.limit(1, "accounts") == 10
    clock.now = 1003.2
    assert _try(limiter)


@settings(max_examples=60, deadline=None)
@given(
    processes=st.integers(1, 4),
    limit=st.integers(1, 200),
    per_tick=st.integers(0, 6),
)
def test_after_the_first_second_no_second_admits_more_than_the_limit(
    processes: int, limit: int, per_tick: int
) -> None:
    admitted = _run(processes, limit, seconds=3, per_tick=per_tick)
    first, *rest = sorted(admitted)
    assert admitted[first] <= processes * limit
    assert all(admitted[s] <= limit for s in rest), admitted


def test_the_api_of_a_path() -> None:
    assert limits.api_of("/v1/messages") == limits.MESSAGES
    assert limits.api_of("/v1/messages/abc") == limits.MESSAGES
    assert limits.api_of("/beta/chatapp-accounts/messenger") == limits.ACCOUNTS
    assert limits.api_of("/v2/applications/x") == limits.APPLICATIONS
    assert limits.api_of("/sandbox/v1/inbound") == limits.SANDBOX
    assert limits.api_of("/v1/redact/transaction") == limits.REDACT
    assert limits.api_of("/inbox/events") == limits.INBOX
    assert limits.api_of("") is None and limits.api_of("/admin/v1/tenants") is None


def test_overrides_are_checked() -> None:
    assert limits.refusals(TenantLimits(1, limits.LIMIT_MAX)) == []
    assert limits.refusals(TenantLimits(None, None)) == []
    bad = limits.refusals(TenantLimits(0, limits.LIMIT_MAX + 1))
    assert [p.name for p in bad] == ["requests_per_second", "messages_per_second"]
    assert [p.name for p in limits.refusals(TenantLimits(True, 5))] == ["requests_per_second"]


def test_credentials_admitted_before_are_refused_early_while_their_second_is_spent() -> None:
    store, clock = Store(2), Clock(3000.1)
    security = SecurityService(limiter=Limiter(store, 2, 2, clock))
    good = BasicCredentials("key1", "secret", "/v2/applications")
    security.refuse_early(good, "applications")  # never admitted: checked as usual
    for _ in range(2):
        security.refuse_early(good, "applications")
        security.admit(1, "applications", good)
    with pytest.raises(Throttled) as refused:
        security.refuse_early(good, "applications")
    assert refused.value.limit == 2 and refused.value.reset_at == 3001.0
    # Not those credentials (a wrong secret), another API: checked and counted as usual.
    security.refuse_early(BasicCredentials("key1", "guess", "/v2/applications"), "applications")
    security.refuse_early(good, "accounts")
    clock.now = 3001.05  # a new second
    security.refuse_early(good, "applications")
    SecurityService().refuse_early(good, "applications")  # limits off: nothing refused


def test_stopping_ends_the_claims_even_when_a_cancellation_is_swallowed() -> None:
    class Swallowing(Store):
        async def claim(self, claims: Sequence[Claim]) -> dict[Claim, Taken]:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                pass  # (as Python 3.11's wait_for may, inside a connection pool)
            return {}

    async def scenario() -> None:
        store = Swallowing(10)
        limiter = Limiter(store, 10, 10)
        limiter.start()
        limiter.admit(1, "accounts")  # something to claim for
        await asyncio.sleep(0.3)  # the loop is in its claim
        await asyncio.wait_for(limiter.stop(), 10)  # (a hang guard: it would wait 30 s)
        claims = store.claims
        await asyncio.sleep(0.3)
        assert store.claims == claims  # the loop ended: no claim after the stop

    asyncio.run(scenario())
