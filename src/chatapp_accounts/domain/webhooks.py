"""What becomes of a webhook after an attempt (Vonage's schedule), and the operator's use cases
on the outbox (list, redeliver). The dispatcher (delivery/) makes the attempts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NoReturn

import msgspec

from . import admin, rules
from .errors import ContentRemoved, InvalidInput, InvalidParam, WebhookNotFound
from .models import Credentials, OutboxFilter, Redelivered, WebhookDetail, WebhookRecord
from .ports import Security, UnitOfWork, UnitOfWorkFactory
from .tenants import authenticate

STATES = ("pending", "delivered", "failed")


class RetryPolicy(msgspec.Struct, frozen=True):
    """A retry after `first` seconds, then doubling, at most `max_interval` apart, for
    `retry_for` seconds from the first attempt."""

    first: float = 5.0
    max_interval: float = 900.0
    retry_for: float = 86400.0


class Outcome(msgspec.Struct, frozen=True):
    """One attempt: the answer's status (None: no answer: refused, failed or timed out), what
    went wrong, and the answer's Retry-After in seconds."""

    status_code: int | None
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False  # no answer, and none will ever come (a refused address, say)
    answer: str | None = None  # the start of the answer's body, as text (ANSWER_KEPT bytes)


ANSWER_KEPT = 2048  # bytes of a receiver's answer kept with its attempt, for the inbox


class Decision(msgspec.Struct, frozen=True):
    state: str  # one of STATES
    next_attempt_at: float | None = None


def decide(
    outcome: Outcome, attempts: int, first_attempt_at: float, now: float, policy: RetryPolicy
) -> Decision:
    """`attempts` counts this one. 2xx: delivered. A connection failure, a timeout, 429 or 5xx:
    tried again on the schedule (429's and 503's Retry-After instead, when it gives one), unless
    that is past the retry window: failed. Any other answer: failed at once."""
    code = outcome.status_code
    if rules.is_delivered(code):
        return Decision("delivered")
    if outcome.permanent or not rules.is_retryable(code):
        return Decision("failed")
    delay = rules.retry_delay(attempts, policy.first, policy.max_interval)
    if outcome.retry_after is not None and code in (429, 503):
        delay = outcome.retry_after
    next_at = now + delay
    if next_at > first_attempt_at + policy.retry_for:
        return Decision("failed")
    return Decision("pending", next_at)


LIST_DEFAULT = 50
# Failed webhooks one transaction of redeliver_failed reads (and sets pending): milliseconds of
# a write lock, the event loop given back between batches.
REDELIVER_BATCH = 500


def outbox_filter(
    state: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> OutboxFilter:
    """The operator's filters of the outbox, checked (InvalidInput naming each bad one): a
    state, a tenant's api_key, a time the webhooks were made in (ISO 8601, as the audit log's:
    since inclusive, until exclusive)."""
    bad: list[InvalidParam] = []
    start, end = admin.check_filters(tenant, since, until, limit, bad)
    if state is not None and state not in STATES:
        bad.append(InvalidParam("state", "pending, delivered or failed"))
    if bad:
        raise InvalidInput(bad)
    return OutboxFilter(state, tenant, start, end)


async def list_webhooks(
    uow_factory: UnitOfWorkFactory,
    *,
    state: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = LIST_DEFAULT,
) -> list[WebhookRecord]:
    """The outbox, newest first, every tenant's or one's (an unknown api_key has none)."""
    where = outbox_filter(state, tenant, since, until, limit)
    async with uow_factory() as uow:
        return await uow.webhooks.listing(where, limit)


async def redeliver_webhook(uow_factory: UnitOfWorkFactory, webhook_id: str) -> str:
    """Send a webhook again from now (a failed one, usually), with a new retry window; its
    tenant's api_key."""
    async with uow_factory(write=True) as uow:
        owner = await uow.webhooks.redeliver(_webhook_id(webhook_id), time.time())
        if owner is None:
            await _refused(uow, None, webhook_id)
        await uow.commit()
    return owner


async def redeliver_failed(
    uow_factory: UnitOfWorkFactory,
    *,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    batch: int = REDELIVER_BATCH,
) -> Redelivered:
    """Every failed webhook (of a tenant, made in a time range) sent again from now, with a new
    retry window, as redeliver_webhook does one: `batch` a transaction, in pk order, the event
    loop given back between transactions. Those whose message's content was removed cannot be
    sent again (their bodies are gone): they stay failed and are counted as skipped."""
    where = outbox_filter("failed", tenant, since, until)
    after, redelivered, skipped = 0, 0, 0
    while True:
        async with uow_factory(write=True) as uow:
            read, done, removed, last = await uow.webhooks.redeliver_failed(
                where, after, batch, time.time()
            )
            await uow.commit()
        redelivered, skipped, after = redelivered + done, skipped + removed, last
        if read < batch:
            return Redelivered(redelivered, skipped)
        await asyncio.sleep(0)


def redelivered_outcome(done: Redelivered) -> str:
    """The audit log's outcome of redeliver_failed."""
    return f"{done.redelivered} redelivered, {done.skipped} skipped (content removed)"


async def _refused(uow: UnitOfWork, tenant: int | None, webhook_id: str) -> NoReturn:
    """Why a webhook was not sent again: its message's content is gone, or there is no such
    webhook (of this tenant's)."""
    record = await uow.webhooks.get(tenant, _webhook_id(webhook_id))
    if record is not None and record.content_removed:
        raise ContentRemoved(webhook_id)
    raise WebhookNotFound(webhook_id)


# The same for a tenant, through the sandbox API and the web inbox (docs/inbox.md).


def _webhook_id(webhook_id: str) -> int:
    if not webhook_id.isdigit() or len(webhook_id) > rules.QUERY_INT_DIGITS_MAX * 2:
        raise WebhookNotFound(webhook_id)
    return int(webhook_id)


async def _detail(uow: UnitOfWork, security: Security, tenant: int | None,
                  webhook_id: str) -> WebhookDetail:  # fmt: skip
    record = await uow.webhooks.get(tenant, _webhook_id(webhook_id))
    if record is None:
        raise WebhookNotFound(webhook_id)
    previous = await uow.webhooks.previous(record)
    secret = await uow.tenants.signature_secret(record.api_key)
    checks = [
        security.check_signature(a.request_headers.get("Authorization"), record.body, secret)
        if a.request_headers is not None
        else None
        for a in record.attempts
    ]
    return WebhookDetail(record, checks, previous)


async def webhook_detail(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials, webhook_id: str
) -> WebhookDetail:
    """The tenant's webhook with its attempts, each attempt's signature checked with the
    tenant's current secret, and the webhook before it of the same message."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        return await _detail(uow, security, tenant.id, webhook_id)


async def operator_webhook(
    uow_factory: UnitOfWorkFactory, security: Security, webhook_id: str
) -> WebhookDetail:
    """webhook_detail, of anyone's webhook (the command line's)."""
    async with uow_factory() as uow:
        return await _detail(uow, security, None, webhook_id)


async def _resend(
    uow: UnitOfWork, tenant: int | None, webhook_id: str, body: bytes
) -> tuple[str, str]:
    new = await uow.webhooks.resend(tenant, _webhook_id(webhook_id), body, time.time())
    if new is None:
        await _refused(uow, tenant, webhook_id)
    await uow.commit()
    return str(new[0]), new[1]


async def operator_resend(
    uow_factory: UnitOfWorkFactory, webhook_id: str, inputs: Callable[[], bytes]
) -> tuple[str, str]:
    """resend_webhook, of anyone's webhook (the command line's): the new webhook's id and its
    tenant's api_key."""
    async with uow_factory(write=True) as uow:
        return await _resend(uow, None, webhook_id, inputs())


async def redeliver_own(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials, webhook_id: str
) -> None:
    """redeliver_webhook, of one of the tenant's own webhooks."""
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        if not await uow.webhooks.redeliver(_webhook_id(webhook_id), time.time(), tenant.id):
            await _refused(uow, tenant.id, webhook_id)
        await uow.commit()


async def resend_webhook(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    webhook_id: str,
    inputs: Callable[[], bytes],
) -> str:
    """Edit and resend: a new webhook like the tenant's `webhook_id` (same message, URL and
    kind) with the body `inputs` gives (a JSON object, checked by the caller's parser), signed
    when it is sent; its id."""
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        new, _ = await _resend(uow, tenant.id, webhook_id, inputs())
    return new
