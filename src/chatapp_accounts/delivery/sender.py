"""The sender: a task in every server process that hands accepted messages to their channels.

One loop. Each turn records the outcomes of the tries that finished (domain `record_send`, each
in a unit of its own, written in one batch: statuses, status webhooks, jobs done or due again,
the next message of a failover list), then claims due send jobs (`claim_sends`: a lease;
PostgreSQL skips the jobs another process has locked), reads what their channels need of their
accounts (`prepare_sends`, one statement: a live channel's credentials, the sandbox's fault
switches) and starts a try for each: the channel's `submit`,
with a timeout. Tries run concurrently, at most `concurrency` at once. A live channel's account
is paced (delivery/pacing.py): a try whose turn is further than a moment away is not made; its
job goes back, due at its turn (`send_deferred`). A provider's refusal is retried or ends the
message (domain `send_refused`); a throttle answer also holds that account back. A try that
times out is tried again on the provider retry schedule; one whose channel raises is logged
(the exception's type and the message's uuid, nothing of its content) and ends `undeliverable`.
A process that dies mid-try leaves its lease to run out; the job is claimed again by any process
and counted as a retry of unknown outcome (the channel may have taken it: at least once).

The loop sleeps until a batch wrote send jobs (this process's, or on PostgreSQL any process's,
through LISTEN; storage/listen.py), a try finished, or a poll interval passed (retries that came
due)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..domain.errors import ServiceUnavailable
from ..domain.messages import (
    SendOutcome,
    claim_sends,
    gone_jobs,
    prepare_sends,
    record_send,
    send_deferred,
    send_failed,
    send_refused,
    send_unanswered,
)
from ..domain.ports import Channels, UnitOfWorkFactory
from ..domain.providers import Refusal, SendTry
from ..domain.webhooks import RetryPolicy
from .loop import run_turn, wait_for_wake, wind_down
from .pacing import HOLD, Pacer

log = logging.getLogger("chatapp_accounts.sender")

POLL_SECONDS = 0.25


class Sender:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        channels: Channels,
        policy: RetryPolicy,
        *,
        timeout: float,
        lease: float,
        concurrency: int,
        on_try: Callable[[str], None] | None = None,
        on_dropped: Callable[[str, int], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._channels = channels
        self._policy = policy
        self._timeout = timeout
        self._lease = lease
        self._concurrency = concurrency
        self._on_try = on_try
        self._on_dropped = on_dropped
        self._wake = asyncio.Event()
        self._outcomes: list[SendOutcome] = []
        self._tries: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._pacer = Pacer()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sender")

    async def stop(self) -> None:
        """Stop claiming; let running tries end (up to their timeout) and record them."""
        self._stopping = True
        self._wake.set()
        await wind_down(self._task, self._tries, self._timeout, self._record)
        await self._channels.close()

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0)  # requests run between turns
            self._wake.clear()
            if await run_turn("sender", log, self._turn):
                continue
            await wait_for_wake(self._wake, POLL_SECONDS)

    async def _turn(self) -> bool:
        await self._record()
        return await self._claim()

    async def _record(self) -> None:
        """Each outcome in a unit of its own, all in one batch. One the database could not take
        (it is unreachable) is recorded on a later turn; one whose rows fail (its message was
        pruned meanwhile) is logged and left: its lease runs out and it is tried again."""
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        done = await asyncio.gather(
            *(record_send(self._uow_factory, outcome) for outcome in outcomes),
            return_exceptions=True,
        )
        again = []
        failed = [
            o.job.pk
            for o, r in zip(outcomes, done, strict=True)
            if isinstance(r, BaseException) and not isinstance(r, ServiceUnavailable)
        ]
        gone = await gone_jobs(self._uow_factory, failed) if failed else set()
        for outcome, result in zip(outcomes, done, strict=True):
            if isinstance(result, ServiceUnavailable):
                again.append(outcome)
            elif isinstance(result, BaseException) and outcome.job.pk in gone:
                log.warning(
                    "send job %d (message %s): dropped: its message is gone (its tenant was "
                    "deleted, or it was pruned) while it was tried",
                    outcome.job.pk, outcome.job.message_uuid,
                )  # fmt: skip
                if self._on_dropped is not None:
                    self._on_dropped("send_job", 1)
            elif isinstance(result, BaseException):
                log.error(
                    "send job %d (message %s): its outcome could not be recorded: %s",
                    outcome.job.pk, outcome.job.message_uuid, type(result).__name__,
                )  # fmt: skip
        if again:
            self._outcomes = again + self._outcomes
            raise ServiceUnavailable()

    async def _claim(self) -> bool:
        free = self._concurrency - len(self._tries)
        if free <= 0:
            return False
        now = time.time()
        jobs = await claim_sends(self._uow_factory, now, now + self._lease, free)
        if not jobs:
            return False
        loop = asyncio.get_running_loop()
        for send in await prepare_sends(self._uow_factory, jobs, self._channels):
            job = send.job
            if job.outcome_unknown:
                self._count("unknown_retried")
            rate = self._channels.get(job.message.channel).rate
            wait = 0.0 if rate is None else self._pacer.turn(job.pk, _keys(send), rate)
            if wait > HOLD:
                self._count("deferred")
                self._outcomes.append(send_deferred(job, time.time() + wait))
                continue
            task = loop.create_task(self._try(send, wait))
            self._tries.add(task)
            task.add_done_callback(self._tries.discard)
        return True  # another turn: it records the deferred ones

    def _count(self, kind: str) -> None:
        if self._on_try is not None:
            self._on_try(kind)

    async def _try(self, send: SendTry, wait: float) -> None:
        job = send.job
        channel = self._channels.get(job.message.channel)
        if wait > 0:
            await asyncio.sleep(wait)  # its turn at its account's rate
        try:
            async with asyncio.timeout(self._timeout):
                answer = await channel.submit(send)
            if isinstance(answer, Refusal):
                now = time.time()
                outcome = send_refused(job, answer, now, self._policy)
                if answer.throttled and outcome.retry_at is not None:
                    self._pacer.throttle(_keys(send), outcome.retry_at - now, pair=answer.pair)
                kind = "refused" if outcome.changes else (
                    "throttled" if answer.throttled else "retry")  # fmt: skip
            else:
                outcome = SendOutcome(job, answer.changes, answer.provider_message_id)
                kind = "taken"
        except TimeoutError:  # the provider may have taken it: tried again, at least once
            outcome = send_unanswered(job, time.time(), self._policy, "no answer in time")
            kind = "timeout" if not outcome.changes else "failed"
        except Exception as exc:  # noqa: BLE001 - a channel that breaks fails its message only
            log.error(  # not .exception: a traceback could show the message's content
                "send job %d (message %s): the %s channel raised %s",
                job.pk, job.message_uuid, job.message.channel, type(exc).__name__,
            )  # fmt: skip
            outcome = send_failed(job, "the channel failed to send the message", time.time())
            kind = "failed"
        self._count(kind)
        self._outcomes.append(outcome)
        self._wake.set()


def _keys(send: SendTry) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The pacing keys of a send: its account's (the rate, most throttles), and its account
    and customer's (WhatsApp's pair limit, 131056)."""
    message = send.job.message
    account = (message.channel, str(send.job.tenant_id), message.sender)
    return account, (*account, message.to)
