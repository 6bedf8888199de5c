"""The dispatcher: a task in every server process that sends the outbox's webhooks.

One loop, one write transaction a turn: record the outcomes of the attempts that finished,
then claim due webhooks (a lease: `claimed_until`; PostgreSQL skips the rows another process
has locked), then start an attempt for each. Attempts run concurrently, at most
`concurrency` in all and `per_destination` to one destination, so a slow or dead endpoint
holds only its own share. A process that dies mid-attempt leaves its leases to expire; the
webhooks are claimed again (at least once). The loop sleeps until a commit of this process
wrote webhooks, an attempt finished, or a short poll interval passed (for other processes'
webhooks and retries that came due).

Requests come first. Each turn starts by yielding to the event loop once and timing how long
that took (the loop's lag: the work queued before the dispatcher's turn came back). While the
lag is long and requests are being served, the loop is saturated and the webhooks can wait a
little (they are in the outbox): each destination's share of attempts at once is halved, down to
half of `per_destination` (never less: accepted work keeps its share of the process, and
back-pressure refuses new sends when the backlog still grows). Otherwise it grows back by one a
turn, up to `per_destination`: with no request in flight (a backlog draining) the dispatcher
takes the whole loop. A slow destination's attempts wait on the network and take no CPU: the
share bounds what a destination is given, not the others' room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec

from ..domain.models import AttemptResult
from ..domain.webhooks import Outcome, RetryPolicy, decide
from ..security.webhooks import sign_webhook
from ..storage.db import Connection
from ..storage.outbox import Claimed
from ..storage.uow import SqlUnitOfWorkFactory
from .client import WebhookClient, request_headers
from .loop import run_turn, wait_for_wake, wind_down

log = logging.getLogger("chatapp_accounts.webhooks")
_encode = msgspec.json.Encoder().encode

POLL_SECONDS = 0.25
COALESCE_SECONDS = 0.002
STATS_SECONDS = 5.0
PRUNE_SECONDS = 60.0
ANALYZE_SECONDS = 15.0
HOUSEKEEPING_SECONDS = 1.0
PRUNE_BATCH = 1000
# Messages whose content one transaction removes (each is four UPDATEs of a few rows).
CONTENT_BATCH = 500
LAG_HIGH = 0.002  # seconds: the loop is saturated; a destination's share is halved
LAG_LOW = 0.001  # seconds: the loop has room; a share grows by one
# Accepted work is never starved: while requests saturate the loop, a destination keeps half its
# share (docs/benchmark.md, issue 21: down to 2, webhooks nearly stopped on PostgreSQL).
SHARE_FLOOR_DIVISOR = 2


def share_floor(ceiling: int) -> int:
    return max(1, ceiling // SHARE_FLOOR_DIVISOR)


def next_share(share: int, lag: float, requests: int, ceiling: int) -> int:
    """A destination's share of attempts at once for the next turn: halved while the loop lags
    and requests are in flight, else one more, within [share_floor(ceiling), ceiling]."""
    if lag > LAG_HIGH and requests > 0:
        return min(ceiling, max(share_floor(ceiling), share // 2))
    if lag < LAG_LOW or requests == 0:
        return min(ceiling, share + 1)
    return min(ceiling, share)


class Dispatcher:
    def __init__(
        self,
        uow_factory: SqlUnitOfWorkFactory,
        client: WebhookClient,
        policy: RetryPolicy,
        *,
        timeout: float,
        concurrency: int,
        per_destination: int,
        retention_seconds: float,
        content_retention_seconds: float | None = None,
        on_attempt: Callable[[str], None] | None = None,
        on_stats: Callable[[int, float], None] | None = None,
        requests: Callable[[], int] = lambda: 0,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._outbox = uow_factory.outbox
        self._client = client
        self._policy = policy
        # Longer than an attempt can take, so that no healthy process's attempt is taken over.
        self._lease = 3 * timeout + 2
        self._concurrency = concurrency
        self._per_destination = per_destination
        self._share = per_destination  # attempts at once to one destination, for now
        self._retention = retention_seconds
        self._content_retention = (
            retention_seconds if content_retention_seconds is None else content_retention_seconds
        )
        self._on_attempt = on_attempt
        self._on_stats = on_stats
        self._on_dropped = on_dropped
        self._requests = requests  # requests in flight in this process
        self._wake = asyncio.Event()
        self._results: list[AttemptResult] = []
        self._attempts: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_stats = 0.0
        self._next_prune = 0.0
        self._next_analyze = 0.0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="dispatcher")
        self._keeper = loop.create_task(self._keep(), name="dispatcher housekeeping")

    async def stop(self) -> None:
        """Stop claiming; let running attempts finish (a few seconds at most) and record them."""
        self._stopping = True
        self._wake.set()
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await wind_down(self._task, self._attempts, 2, lambda: self._turn(claim=False))
        await self._client.close()

    async def _run(self) -> None:
        while not self._stopping:
            yielded = time.perf_counter()
            await asyncio.sleep(0)  # requests and attempts run between turns
            self._share = next_share(
                self._share, time.perf_counter() - yielded, self._requests(), self._per_destination
            )
            # Cleared before the turn, not after: an attempt that finishes while the turn waits
            # on the database (PostgreSQL) sets it again, and is recorded at once rather than
            # at the next poll (that lost wake-up held PostgreSQL to 180 webhooks/s).
            self._wake.clear()
            if await run_turn("webhook dispatcher", log, lambda: self._turn(claim=True)):
                continue
            await wait_for_wake(self._wake, POLL_SECONDS)
            if self._attempts:
                # Attempts are finishing: gather a few more outcomes into the next turn's
                # transaction rather than commit one at a time.
                await asyncio.sleep(COALESCE_SECONDS)

    async def _keep(self) -> None:
        """The housekeeping (stats, ANALYZE, prune) in a task of its own, on connections of
        its own: a claim never waits for an ANALYZE or a prune of a large outbox to end."""
        while not self._stopping:
            await run_turn("webhook housekeeping", log, self._housekeeping)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    async def _turn(self, *, claim: bool) -> bool:
        """Record what finished, claim what is due; True when something was claimed."""
        results, self._results = self._results, []
        share = self._share
        # A claim reads twice as many candidates as it may take: while the share is small, a
        # few destinations' worth, not the whole concurrency's.
        free = min(self._concurrency - len(self._attempts), 4 * share) if claim else 0
        if self._attempts and free < min(self._concurrency, share) // 4:
            # A claim reads past the webhooks in flight and those waiting behind them: made
            # for a few slots at least, not for each one that frees.
            free = 0
        if not results and free <= 0:
            return False
        room = {dest: share - n for dest, n in self._in_flight.items() if n > 0}
        now = time.time()
        try:
            async with self._uow_factory(write=True) as uow:
                if results:
                    results = await self._drop_gone(uow.conn, results)
                    await self._outbox.record(uow.conn, results)
                claimed = []
                if free > 0:
                    claimed = await self._outbox.claim(
                        uow.conn, now, now + self._lease, free, room, share
                    )
                await uow.commit()
        except BaseException:
            self._results = results + self._results  # recorded on the next turn
            raise
        for webhook in claimed:
            self._in_flight[webhook.destination] = self._in_flight.get(webhook.destination, 0) + 1
            task = asyncio.get_running_loop().create_task(self._attempt(webhook))
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)
        return bool(claimed)

    async def _drop_gone(
        self, conn: Connection, results: list[AttemptResult]
    ) -> list[AttemptResult]:
        """The results whose webhooks are still stored (and locked until the turn commits);
        those gone while they were attempted (their tenant was deleted, their message pruned)
        are dropped, and counted: recording them would fail the turn, again and again."""
        kept = await self._outbox.existing(conn, [r.pk for r in results])
        gone = [r.pk for r in results if r.pk not in kept]
        if gone:
            log.warning("dropped %d webhooks gone while they were attempted (their tenant was "
                        "deleted, or their message pruned): %s", len(gone), gone)  # fmt: skip
            if self._on_dropped is not None:
                self._on_dropped("webhook", len(gone))
        return [r for r in results if r.pk in kept]

    async def _attempt(self, webhook: Claimed) -> None:
        started = time.time()
        sent: dict[str, str] | None = None
        try:
            if webhook.signature_secret is None:
                outcome = Outcome(
                    None,
                    "the tenant has no webhook signature secret "
                    "(chatapp-accounts tenants signature-secret API_KEY)",
                    permanent=True,
                )
            else:
                token = sign_webhook(
                    webhook.body,
                    webhook.signature_secret,
                    api_key=webhook.api_key,
                    application_id=webhook.application_id,
                )
                sent = request_headers(token)
                outcome = await self._client.post(webhook.url, webhook.body, token)
        except Exception as exc:  # noqa: BLE001 - an attempt that broke is a failed attempt
            outcome = Outcome(None, f"{type(exc).__name__}")
        finally:
            left = self._in_flight.get(webhook.destination, 1) - 1
            if left > 0:
                self._in_flight[webhook.destination] = left
            else:
                self._in_flight.pop(webhook.destination, None)
        now = time.time()
        first = webhook.first_attempt_at if webhook.first_attempt_at is not None else started
        decision = decide(outcome, webhook.attempts + 1, first, now, self._policy)
        if self._on_attempt is not None:
            kind = {"pending": "retry"}.get(decision.state, decision.state)
            self._on_attempt(kind)
        if decision.state != "delivered":
            log.info(
                "webhook %d to %s: %s (%s)",
                webhook.pk, webhook.destination, outcome.error, decision.state,
            )  # fmt: skip
        result = AttemptResult(
            pk=webhook.pk,
            tenant_id=webhook.tenant_id,
            order_key=webhook.order_key,
            at=started,
            url=webhook.url,
            status_code=outcome.status_code,
            error=outcome.error,
            state=decision.state,
            next_attempt_at=decision.next_attempt_at,
            first_attempt_at=first,
            retried=webhook.attempts > 0,
            request_headers=_encode(sent).decode() if sent is not None else None,
            answer=outcome.answer,
            latency=now - started,
        )
        if decision.state == "delivered" and not result.retried and outcome.status_code:
            # Nearly every attempt: written in the shared batches, not in the next turn's
            # transaction (on PostgreSQL a turn is several round trips, one at a time).
            try:
                async with self._uow_factory() as uow:
                    await uow.webhooks.delivered(result)
                    await uow.commit()
            except Exception:  # noqa: BLE001 - recorded by a turn instead
                self._results.append(result)
        else:
            self._results.append(result)
        self._wake.set()

    async def _housekeeping(self) -> bool:
        now = time.monotonic()
        if now >= self._next_stats and self._on_stats is not None:
            self._next_stats = now + STATS_SECONDS
            async with self._uow_factory() as uow:
                pending, oldest = await self._outbox.stats(uow.conn)
            self._on_stats(pending, max(0.0, time.time() - oldest) if oldest else 0.0)
        if now >= self._next_analyze:
            self._next_analyze = now + ANALYZE_SECONDS
            async with self._uow_factory() as uow:
                await self._outbox.analyze(uow.conn)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_SECONDS
            await self._remove_content()
            await self._prune()
        return False

    async def _remove_content(self) -> None:
        """The content of messages older than the content retention, a batch a transaction
        (CONTENT_BATCH messages: milliseconds of locks), the loop given back between batches."""
        before = time.time() - self._content_retention
        while not self._stopping:
            async with self._uow_factory(write=True) as uow:
                removed = await self._outbox.remove_content(
                    uow.conn, before, CONTENT_BATCH, time.time()
                )
                await uow.commit()
            if removed:
                log.info("removed the content of %d messages older than its retention", removed)
            if removed < CONTENT_BATCH:
                break
            await asyncio.sleep(0)

    async def _prune(self) -> None:
        """Whole messages older than the retention, a batch a transaction."""
        before = time.time() - self._retention
        while not self._stopping:
            async with self._uow_factory(write=True) as uow:
                deleted = await self._outbox.prune(uow.conn, before, PRUNE_BATCH)
                await uow.commit()
            if deleted:
                log.info("pruned %d messages older than the retention", deleted)
            if deleted < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
