"""Use cases of the Messages API (send, update), of the senders that hand messages to their
channels (claim, record), and of the sandbox (a simulated customer sends, reads; the messages
listed). Each webhook a use case causes is written to the outbox with what caused it, in one
transaction (uow.webhooks), so it exists exactly when what caused it does; the dispatcher
(delivery/) sends it later. A send is a hand-over: the message and its send job are stored, and
a sender (delivery/sender.py) gives it to its channel."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Final

import msgspec

from . import limits, rules
from .errors import (
    InvalidMessageParams,
    InvalidParam,
    InvalidRecipient,
    InvalidSender,
    MessageNotFound,
    NotAuthenticated,
    ServiceUnavailable,
    Throttled,
)
from .models import (
    CHANNEL_PROVIDERS,
    Application,
    BearerCredentials,
    Conversation,
    Credentials,
    FailoverItem,
    InboundInput,
    MessageFilter,
    MessagePage,
    MessageRecord,
    OutboundMessage,
    SendJob,
    Sent,
    StatusChange,
    StoredMessage,
    Tenant,
)
from .payloads import inbound_body, provider_error, status_body
from .ports import Channels, Load, Security, UnitOfWork, UnitOfWorkFactory
from .providers import Refusal, SenderCredentials, SendTry
from .tenants import authenticate
from .webhooks import RetryPolicy

# A message that ends so is followed by the next one of its failover list.
FAILED: Final = ("rejected", "undeliverable")


def _webhook_url(application: Application | None, kind: str) -> str | None:
    """The application's `messages.webhooks.<kind>.address` (inbound_url, status_url)."""
    if application is None:
        return None
    messages = application.capabilities.get("messages")
    webhooks = messages.get("webhooks") if isinstance(messages, dict) else None
    target = webhooks.get(kind) if isinstance(webhooks, dict) else None
    address = target.get("address") if isinstance(target, dict) else None
    return address if isinstance(address, str) and address else None


def _status_url(webhook_url: str | None, application: Application | None) -> str | None:
    """Where a message's statuses go: its own `webhook_url`, else its application's."""
    return webhook_url or _webhook_url(application, "status_url")


async def _linked_application(
    uow: UnitOfWork, tenant_id: int, channel: str, external_id: str
) -> tuple[bool, Application | None]:
    """(whether the tenant has this account of this channel: another tenant's is none of its
    own, the application linked to it: None when none is)."""
    if not rules.could_be_external_id(external_id):
        return False, None
    return await uow.accounts.linked_application(tenant_id, CHANNEL_PROVIDERS[channel], external_id)


def missing_credentials(channel: str, credentials: SenderCredentials | None) -> str | None:
    """What a live channel lacks to send from an account (docs/providers.md), or None."""
    if credentials is None:
        return f"the {channel} account is gone"
    if channel == "messenger" and not credentials.access_token:
        return "the messenger account has no page access token"
    if channel == "whatsapp":
        lacks = [name for name, value in (("phone_number_id", credentials.phone_number_id),
                                          ("access token", credentials.access_token))
                 if not value]  # fmt: skip
        if lacks:
            return (
                f"the whatsapp number has no {' and no '.join(lacks)}: provision it with "
                "--phone-number-id, --waba-id and --access-token to send live"
            )
    return None


async def _sender(
    uow: UnitOfWork, tenant: Tenant, message: OutboundMessage, live: frozenset[str]
) -> Application:
    """The application a message is sent for: its `from` account's, which must be the caller's
    tenant's, linked, and (with a JWT) linked to the token's application. Another tenant's
    account is answered like one that does not exist. A live channel's account must hold what
    its provider needs (missing_credentials)."""
    channel, sender = message.channel, message.sender
    exists, application = await _linked_application(uow, tenant.id, channel, sender)
    if not exists:
        raise InvalidSender(f"There is no {channel} account '{sender}' in your account")
    if application is None:
        raise InvalidSender(f"The {channel} account '{sender}' is not linked to an application")
    if tenant.application_id is not None and application.id != tenant.application_id:
        raise InvalidSender(
            f"The {channel} account '{sender}' is not linked to the application of this token"
        )
    if channel in live:
        credentials = await uow.accounts.credentials(tenant.id, CHANNEL_PROVIDERS[channel], sender)
        lacking = missing_credentials(channel, credentials)
        if lacking is not None:
            raise InvalidSender(f"The {channel} account '{sender}' cannot send live: {lacking}")
    return application


def _outbound(message: OutboundMessage, message_uuid: str, application_id: str, at: float,
              ) -> MessageRecord:  # fmt: skip
    return MessageRecord(
        uuid=message_uuid,
        direction="outbound",
        channel=message.channel,
        message_type=message.message_type,
        to=message.to,
        sender=message.sender,
        status=None,  # queued: its statuses come when the channel takes it
        application_id=application_id,
        client_ref=message.client_ref,
        created_at=at,
        content=message.content,
    )


async def send_message(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], list[OutboundMessage]],
    load: Load,
    live: frozenset[str] = frozenset(),
) -> Sent:
    """Accept a message and its failover list: the first message and its send job are stored
    in one transaction, and the answer says so; a sender hands it to its channel later
    (delivery/sender.py: `claim_sends`, `record_send`), the rest of the list following one by
    one while each ends `rejected` or `undeliverable`. Refused (Throttled) while more work is
    due than the process can send now (its answer says the tenant's limit, so the caller is
    known first)."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        wait = load.refuse()
        if wait is not None:
            now = time.time()
            raise Throttled(
                wait, security.limit(tenant.id, limits.MESSAGES), now + wait, backlog=True
            )
        messages = inputs()
        applications = [await _sender(uow, tenant, message, live) for message in messages]
        now = time.time()
        workflow_id = str(uuid.uuid4()) if len(messages) > 1 else None
        first, application = messages[0], applications[0]
        message_uuid = str(uuid.uuid4())
        workflow = _workflow(workflow_id, 1, len(messages)) if workflow_id else None
        await uow.messages.add(
            tenant.id,
            _outbound(first, message_uuid, application.id, now),
            root=None,
            webhook_url=first.webhook_url,
            workflow=workflow,
        )
        rest = [
            FailoverItem(m, a.id, _status_url(m.webhook_url, a))
            for m, a in zip(messages[1:], applications[1:], strict=True)
        ]
        status_url = _status_url(first.webhook_url, application)
        await uow.jobs.add(tenant.id, message_uuid, status_url, rest, now)
        await uow.commit()
    return Sent(message_uuid, first.channel, workflow_id)


def _workflow(workflow_id: str, number: int, total: int) -> dict[str, str]:
    return {"workflow_id": workflow_id, "items_number": str(number), "items_total": str(total)}


# The senders' side (delivery/sender.py) --------------------------------------------------


class SendOutcome(msgspec.Struct, frozen=True):
    """What became of a claimed job's try: the statuses the channel gave (empty: it did not
    take the message, tried again at `retry_at`; `deferred`: it was not tried, its account
    being throttled or at its rate), and the provider's id for the message."""

    job: SendJob
    changes: list[StatusChange]
    provider_message_id: str | None = None
    retry_at: float | None = None
    deferred: bool = False


def send_failed(job: SendJob, detail: str, now: float) -> SendOutcome:
    """The message ends `undeliverable` with 1331 (the provider, or the channel, failed)."""
    error = provider_error("1331", detail, job.message_uuid)
    return SendOutcome(job, [StatusChange("undeliverable", now, error)])


def send_unanswered(job: SendJob, now: float, policy: RetryPolicy, reason: str) -> SendOutcome:
    """The channel did not answer (a timeout, a connection error): tried again on the
    schedule, until the horizon from the first try; then `undeliverable`."""
    return send_refused(job, Refusal(retry=True, code="1331", detail=reason), now, policy)


def send_refused(
    job: SendJob, refusal: Refusal, now: float, policy: RetryPolicy,
    spread: Callable[[], float] = random.random,
) -> SendOutcome:  # fmt: skip
    """A provider did not take the message. A permanent refusal ends it `rejected` with its
    code; a transient one is tried again (backoff with jitter, never sooner than the
    provider's Retry-After) until the horizon from the first try, then ends `rejected` 1000
    when the last answer was a throttle, else `undeliverable` 1331, saying how many tries over
    how long and the last answer."""
    if not refusal.retry:
        error = provider_error(refusal.code, refusal.detail, job.message_uuid)
        return SendOutcome(job, [StatusChange("rejected", now, error)])
    delay = rules.send_retry_delay(
        job.attempts, policy.first, policy.max_interval, refusal.after, spread()
    )
    if now + delay <= job.first_attempt_at + policy.retry_for:
        return SendOutcome(job, [], retry_at=now + delay)
    waited = now - job.first_attempt_at
    detail = f"{job.attempts} tries over {waited:.0f} s; last: {refusal.detail}"
    if refusal.throttled:
        error = provider_error("1000", detail, job.message_uuid)
        return SendOutcome(job, [StatusChange("rejected", now, error)])
    return send_failed(job, detail, now)


def send_deferred(job: SendJob, until: float) -> SendOutcome:
    """Not tried: its account is throttled or at its rate until `until`."""
    return SendOutcome(job, [], retry_at=until, deferred=True)


async def prepare_sends(
    uow_factory: UnitOfWorkFactory, jobs: list[SendJob], channels: Channels
) -> list[SendTry]:
    """The claimed jobs as their channels get them: with what the channel needs of the sender
    account, the senders of the whole claim read in one statement (a live channel's
    credentials, read now: a token replaced a moment ago is the one used; the sandbox's fault
    switches, a change applying to the next send), and on a live channel the provider id of
    the message it replies to."""
    if not jobs:
        return []
    keys = {(job.tenant_id, CHANNEL_PROVIDERS[job.message.channel], job.message.sender)
            for job in jobs}  # fmt: skip
    replies: dict[str, str | None] = {}
    async with uow_factory() as uow:
        found = await uow.accounts.senders(sorted(keys))
        for job in jobs:
            message = job.message
            if not channels.get(message.channel).live:
                continue
            context = message.content.get("context")
            replied = context.get("message_uuid") if isinstance(context, dict) else None
            if isinstance(replied, str) and rules.could_be_id(replied):
                replies[job.message_uuid] = await uow.providers.of_message(
                    job.tenant_id, message.channel, replied
                )
    return [
        SendTry(
            job,
            found.get((job.tenant_id, CHANNEL_PROVIDERS[job.message.channel], job.message.sender)),
            replies.get(job.message_uuid),
        )
        for job in jobs
    ]


async def claim_sends(
    uow_factory: UnitOfWorkFactory, now: float, lease_until: float, limit: int
) -> list[SendJob]:
    async with uow_factory(write=True) as uow:
        jobs = await uow.jobs.claim(now, lease_until, limit)
        await uow.commit()
    return jobs


async def record_send(uow_factory: UnitOfWorkFactory, outcome: SendOutcome) -> None:
    """A try's outcome: the message's statuses and their webhooks, its job done (or due
    again); after a failure, the next message of its failover list and its job. (The senders
    record a turn's outcomes each in its own unit: they are written in one batch, and one that
    fails fails alone.)"""
    async with uow_factory() as uow:
        await _record_send(uow, outcome)
        await uow.commit()


async def _record_send(uow: UnitOfWork, outcome: SendOutcome) -> None:
    job, changes = outcome.job, outcome.changes
    if not changes:
        if outcome.deferred:
            await uow.jobs.defer(job, outcome.retry_at or time.time())
        else:
            await uow.jobs.retry(job.pk, outcome.retry_at or time.time())
        return
    message = job.message
    if outcome.provider_message_id is not None:
        await uow.providers.add(
            job.tenant_id, message.channel, outcome.provider_message_id, job.message_uuid,
            message.sender, message.to, changes[0].at,
        )  # fmt: skip
    record = _outbound(message, job.message_uuid, job.application_id, job.created_at)
    for number, change in enumerate(changes, 1):
        await uow.messages.add_status(
            job.tenant_id, job.message_uuid, change, current=number == len(changes)
        )
        if job.status_url is not None:
            body = status_body(record, change, job.workflow)
            await uow.webhooks.add(job.tenant_id, job.message_uuid, job.root, job.application_id,
                                   "status", job.status_url, body, change.at)  # fmt: skip
    await uow.jobs.finish(job.pk, outcome.provider_message_id)
    if changes[-1].status not in FAILED or not job.failover:
        return
    following, rest = job.failover[0], job.failover[1:]
    now = time.time()
    next_uuid = str(uuid.uuid4())
    workflow = None
    if job.workflow is not None:
        number = int(job.workflow["items_number"]) + 1
        workflow = _workflow(job.workflow["workflow_id"], number, int(job.workflow["items_total"]))
    await uow.messages.add(
        job.tenant_id,
        _outbound(following.message, next_uuid, following.application_id, now),
        root=job.root,
        webhook_url=following.message.webhook_url,
        workflow=workflow,
    )
    await uow.jobs.add(job.tenant_id, next_uuid, following.status_url, rest, now)


async def gone_jobs(uow_factory: UnitOfWorkFactory, jobs: list[int]) -> set[int]:
    """Of these send jobs, those no longer stored (their tenant was deleted, or their message
    pruned, while they were tried): an outcome of theirs has nothing left to record."""
    async with uow_factory() as uow:
        return set(jobs) - await uow.jobs.existing(jobs)


async def send_backlog(uow_factory: UnitOfWorkFactory, now: float) -> tuple[int, float | None]:
    """(send jobs due now, when the oldest came due)."""
    async with uow_factory() as uow:
        return await uow.jobs.backlog(now)


async def update_message(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    message_uuid: str,
    inputs: Callable[[], str],
    channels: Channels | None = None,
) -> None:
    """PATCH (JWT only, as the spec): `read` on an inbound WhatsApp or RCS message, `revoked`
    on an outbound RCS message not yet delivered, of the token's application. A message whose
    send job has not run yet is revoked by cancelling the job. On a live channel the provider
    is told first (RBM's DELETE of the message; WhatsApp's mark-as-read), outside any
    transaction; a refusal changes nothing (a transient one is answered 503)."""
    if not isinstance(credentials, BearerCredentials):
        raise NotAuthenticated()
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        status = inputs()
        found = None
        if rules.could_be_id(message_uuid):
            found = await uow.messages.get(tenant.id, message_uuid)
        if found is None or found.record.application_id != tenant.application_id:
            raise MessageNotFound()
        record = found.record
        queued = found.job == "pending"
        if status == "read":
            allowed = record.direction == "inbound" and record.channel in ("whatsapp", "rcs")
            reason = "only an inbound WhatsApp or RCS message can be marked read"
        else:
            allowed = (
                record.direction == "outbound"
                and record.channel == "rcs"
                and (record.status == "submitted" or queued)
            )
            reason = (
                "only an outbound RCS message not yet delivered can be revoked "
                f"(it is {record.status})"
            )
        if not allowed:
            raise InvalidMessageParams(params=[InvalidParam("status", reason)])
        if record.status == status:
            return
        channel = channels.get(record.channel) if channels is not None else None
        refusal = None
        if channel is not None and channel.live and not queued:
            if status == "revoked":
                refusal = await channel.revoke(record, None)
            else:
                provider_id = await uow.providers.of_message(tenant.id, record.channel, record.uuid)
                account = await uow.accounts.credentials(
                    tenant.id, CHANNEL_PROVIDERS[record.channel], record.to
                )
                if provider_id is not None:
                    refusal = await channel.mark_read(record, provider_id, account)
        if refusal is not None:
            if refusal.retry:
                raise ServiceUnavailable("The provider cannot be reached; try again shortly")
            raise InvalidMessageParams(
                params=[InvalidParam("status", f"the provider refused: {refusal.detail}")]
            )
        if queued and status == "revoked":
            await uow.jobs.cancel(found.pk)
        await uow.messages.add_status(
            found.tenant_id, record.uuid, StatusChange(status, time.time())
        )
        await uow.commit()


# The sandbox: a simulated customer -------------------------------------------------------


async def receive(uow: UnitOfWork, tenant_id: int, inbound: InboundInput) -> str:
    """Store a customer's message to one of the tenant's accounts and its inbound webhook."""
    channel, to = inbound.channel, inbound.to
    exists, application = await _linked_application(uow, tenant_id, channel, to)
    if not exists:
        raise InvalidRecipient(f"There is no {channel} account '{to}' in your account")
    if application is None:
        raise InvalidRecipient(
            f"The {channel} account '{to}' is not linked to an application: nothing would "
            "receive the message"
        )
    replied_from = None
    if inbound.context is not None:
        replied = None
        if rules.could_be_id(inbound.context):
            replied = await uow.messages.get(tenant_id, inbound.context)
        if replied is None or replied.record.channel != channel:
            raise InvalidMessageParams(
                params=[InvalidParam("context", "no message of this channel has that uuid")]
            )
        replied_from = replied.record.sender
    now = time.time()
    record = MessageRecord(
        uuid=str(uuid.uuid4()),
        direction="inbound",
        channel=channel,
        message_type=inbound.message_type,
        to=to,
        sender=inbound.sender,
        status=None,
        application_id=application.id,
        client_ref=None,
        created_at=now,
        content=inbound.content,
    )
    await uow.messages.add(tenant_id, record, root=None, webhook_url=None, workflow=None)
    url = _webhook_url(application, "inbound_url")
    if url is not None:
        body = inbound_body(record, inbound, replied_from)
        await uow.webhooks.add(
            tenant_id, record.uuid, record.uuid, application.id, "inbound", url, body, now
        )
    return record.uuid


async def _read(uow: UnitOfWork, tenant_id: int | None, message_uuid: str) -> None:
    """The customer reads a delivered outbound message: its `read` status and webhook (once)."""
    found = (
        await uow.messages.get(tenant_id, message_uuid) if rules.could_be_id(message_uuid) else None
    )
    if found is None or found.record.direction != "outbound":
        raise MessageNotFound()
    record = found.record
    if record.status == "read":
        return
    if record.status != "delivered":
        raise InvalidMessageParams(
            f"Only a delivered message can be read; this one is {record.status}",
            [InvalidParam("message_uuid", f"the message is {record.status}, not delivered")],
        )
    application = None
    if record.application_id is not None:
        application = await uow.applications.get(found.tenant_id, record.application_id)
    await add_statuses(uow, found, [StatusChange("read", time.time())], application)


async def add_statuses(uow: UnitOfWork, found: StoredMessage, changes: list[StatusChange],
                       application: Application | None) -> None:  # fmt: skip
    """A message's later statuses (after its send's), in order, each with its webhook to where
    its statuses go (its own `webhook_url`, else its application's status_url)."""
    record = found.record
    url = _status_url(found.webhook_url, application)
    for number, change in enumerate(changes, 1):
        await uow.messages.add_status(
            found.tenant_id, record.uuid, change, current=number == len(changes)
        )
        if url is not None and application is not None:
            body = status_body(record, change, found.workflow)
            await uow.webhooks.add(found.tenant_id, record.uuid, found.root, application.id,
                                   "status", url, body, change.at)  # fmt: skip


async def sandbox_inbound(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], InboundInput],
) -> str:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        message_uuid = await receive(uow, tenant.id, inputs())
        await uow.commit()
    return message_uuid


async def sandbox_read(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    message_uuid: str,
) -> None:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        await _read(uow, tenant.id, message_uuid)
        await uow.commit()


async def list_messages(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], MessageFilter],
) -> MessagePage:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        query = inputs()
        total, items = await uow.messages.page(tenant.id, query)
    return MessagePage(items, query.number, query.size, total)


LATEST = "latest"  # the id alias of a tenant's newest message, as mail catchers have it
CONVERSATIONS_MAX = 100


async def get_message(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials, message_uuid: str
) -> MessageRecord:
    """The tenant's message with its statuses and webhooks; `latest`: its newest."""
    query = MessageFilter(size=1, uuid=None if message_uuid == LATEST else message_uuid)
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        if query.uuid is not None and not rules.could_be_id(query.uuid):
            raise MessageNotFound()
        _, items = await uow.messages.page(tenant.id, query)
    if not items:
        raise MessageNotFound()
    return items[0]


async def activity(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials
) -> tuple[int, ...]:
    """A mark that changes when the tenant's messages, statuses or webhooks may have: the web
    inbox's event stream compares it, again and again (docs/inbox.md)."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        return await uow.messages.activity(tenant.id)


async def list_conversations(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials
) -> list[Conversation]:
    """The tenant's conversations (an account's thread with one customer), the latest first."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        return await uow.messages.conversations(tenant.id, CONVERSATIONS_MAX)


# The same, for the operator on the command line (every tenant's accounts and messages).


async def operator_inbound(uow_factory: UnitOfWorkFactory, inbound: InboundInput) -> str:
    async with uow_factory() as uow:
        owner = None
        if rules.could_be_external_id(inbound.to):
            owner = await uow.accounts.owner(CHANNEL_PROVIDERS[inbound.channel], inbound.to)
        if owner is None:
            raise InvalidRecipient(f"There is no {inbound.channel} account '{inbound.to}'")
        message_uuid = await receive(uow, owner, inbound)
        await uow.commit()
    return message_uuid


async def operator_read(uow_factory: UnitOfWorkFactory, message_uuid: str) -> None:
    async with uow_factory() as uow:
        await _read(uow, None, message_uuid)
        await uow.commit()


async def operator_messages(uow_factory: UnitOfWorkFactory, query: MessageFilter) -> MessagePage:
    async with uow_factory() as uow:
        total, items = await uow.messages.page(None, query)
    return MessagePage(items, query.number, query.size, total)
