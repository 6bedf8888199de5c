"""Use cases of the Messages API (send, update) and of its sandbox (a simulated customer sends,
reads; the messages listed). Each webhook a use case causes is written to the outbox in its
own transaction (uow.webhooks), so it exists exactly when what caused it does; the dispatcher
(delivery/) sends it later."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Final

from . import rules
from .errors import (
    InvalidMessageParams,
    InvalidParam,
    InvalidRecipient,
    InvalidSender,
    MessageNotFound,
    NotAuthenticated,
)
from .models import (
    CHANNEL_PROVIDERS,
    Application,
    BearerCredentials,
    Credentials,
    InboundInput,
    MessageFilter,
    MessagePage,
    MessageRecord,
    OutboundMessage,
    Sent,
    StatusChange,
    Tenant,
)
from .payloads import inbound_body, status_body
from .ports import Channel, Security, UnitOfWork, UnitOfWorkFactory
from .tenants import authenticate

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


async def _sender(uow: UnitOfWork, tenant: Tenant, message: OutboundMessage) -> Application:
    """The application a message is sent for: its `from` account's, which must be the caller's
    tenant's, linked, and (with a JWT) linked to the token's application. Another tenant's
    account is answered like one that does not exist."""
    channel, sender = message.channel, message.sender
    account = None
    if rules.could_be_external_id(sender):
        account = await uow.accounts.get(tenant.id, CHANNEL_PROVIDERS[channel], sender)
    if account is None:
        raise InvalidSender(f"There is no {channel} account '{sender}' in your account")
    application = None
    if account.application_id is not None:
        application = await uow.applications.get(tenant.id, account.application_id)
    if application is None:
        raise InvalidSender(f"The {channel} account '{sender}' is not linked to an application")
    if tenant.application_id is not None and application.id != tenant.application_id:
        raise InvalidSender(
            f"The {channel} account '{sender}' is not linked to the application of this token"
        )
    return application


async def send_message(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], list[OutboundMessage]],
    channel: Channel,
) -> Sent:
    """Send a message and its failover list: each is handed to the channel in turn until one
    does not end `rejected` or `undeliverable`. The answer comes once the messages, their
    statuses and the status webhooks are committed. The channel is called outside any
    transaction (a provider's is a network call)."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        messages = inputs()
        applications = [await _sender(uow, tenant, message) for message in messages]
    workflow_id = str(uuid.uuid4()) if len(messages) > 1 else None
    outcomes: list[tuple[str, float, list[StatusChange]]] = []
    for message in messages:
        message_uuid = str(uuid.uuid4())
        sent_at = time.time()
        changes = await channel.submit(message, message_uuid)
        outcomes.append((message_uuid, sent_at, changes))
        if not changes or changes[-1].status not in FAILED:
            break
    async with uow_factory(write=True) as uow:
        root: int | None = None
        for number, (message_uuid, sent_at, changes) in enumerate(outcomes, 1):
            message, application = messages[number - 1], applications[number - 1]
            record = MessageRecord(
                uuid=message_uuid,
                direction="outbound",
                channel=message.channel,
                message_type=message.message_type,
                to=message.to,
                sender=message.sender,
                status=changes[-1].status if changes else None,  # its statuses come with it
                application_id=application.id,
                client_ref=message.client_ref,
                created_at=sent_at,
                content=message.content,
            )
            workflow = None
            if workflow_id is not None:
                workflow = {
                    "workflow_id": workflow_id,
                    "items_number": str(number),
                    "items_total": str(len(messages)),
                }
            pk = await uow.messages.add(
                tenant.id, record, root=root, webhook_url=message.webhook_url, workflow=workflow
            )
            root = pk if root is None else root
            url = message.webhook_url or _webhook_url(application, "status_url")
            for change in changes:
                await uow.messages.add_status(pk, change, current=False)
                if url is not None:
                    body = status_body(record, change, workflow)
                    await uow.webhooks.add(
                        tenant.id, pk, root, application.id, "status", url, body, change.at
                    )
        await uow.commit()
    return Sent(outcomes[0][0], messages[0].channel, workflow_id)


async def update_message(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    message_uuid: str,
    inputs: Callable[[], str],
) -> None:
    """PATCH (JWT only, as the spec): `read` on an inbound WhatsApp or RCS message, `revoked`
    on an outbound RCS message not yet delivered, of the token's application."""
    if not isinstance(credentials, BearerCredentials):
        raise NotAuthenticated()
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        status = inputs()
        found = None
        if rules.could_be_id(message_uuid):
            found = await uow.messages.get(tenant.id, message_uuid)
        if found is None or found.record.application_id != tenant.application_id:
            raise MessageNotFound()
        record = found.record
        if status == "read":
            allowed = record.direction == "inbound" and record.channel in ("whatsapp", "rcs")
            reason = "only an inbound WhatsApp or RCS message can be marked read"
        else:
            allowed = (
                record.direction == "outbound"
                and record.channel == "rcs"
                and record.status == "submitted"
            )
            reason = (
                "only an outbound RCS message not yet delivered can be revoked "
                f"(it is {record.status})"
            )
        if not allowed:
            raise InvalidMessageParams(params=[InvalidParam("status", reason)])
        if record.status != status:
            await uow.messages.add_status(found.pk, StatusChange(status, time.time()))
        await uow.commit()


# The sandbox: a simulated customer -------------------------------------------------------


async def _receive(uow: UnitOfWork, tenant_id: int, inbound: InboundInput) -> str:
    """Store a customer's message to one of the tenant's accounts and its inbound webhook."""
    channel, to = inbound.channel, inbound.to
    account = None
    if rules.could_be_external_id(to):
        account = await uow.accounts.get(tenant_id, CHANNEL_PROVIDERS[channel], to)
    if account is None:
        raise InvalidRecipient(f"There is no {channel} account '{to}' in your account")
    application = None
    if account.application_id is not None:
        application = await uow.applications.get(tenant_id, account.application_id)
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
    pk = await uow.messages.add(tenant_id, record, root=None, webhook_url=None, workflow=None)
    url = _webhook_url(application, "inbound_url")
    if url is not None:
        body = inbound_body(record, inbound, replied_from)
        await uow.webhooks.add(tenant_id, pk, pk, application.id, "inbound", url, body, now)
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
    change = StatusChange("read", time.time())
    await uow.messages.add_status(found.pk, change)
    application = None
    if record.application_id is not None:
        application = await uow.applications.get(found.tenant_id, record.application_id)
    url = found.webhook_url or _webhook_url(application, "status_url")
    if url is not None and application is not None:
        body = status_body(record, change, found.workflow)
        await uow.webhooks.add(
            found.tenant_id, found.pk, found.root, application.id, "status", url, body, change.at
        )


async def sandbox_inbound(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], InboundInput],
) -> str:
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        message_uuid = await _receive(uow, tenant.id, inputs())
        await uow.commit()
    return message_uuid


async def sandbox_read(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    message_uuid: str,
) -> None:
    async with uow_factory(write=True) as uow:
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


# The same, for the operator on the command line (every tenant's accounts and messages).


async def operator_inbound(uow_factory: UnitOfWorkFactory, inbound: InboundInput) -> str:
    async with uow_factory(write=True) as uow:
        owner = None
        if rules.could_be_external_id(inbound.to):
            owner = await uow.accounts.owner(CHANNEL_PROVIDERS[inbound.channel], inbound.to)
        if owner is None:
            raise InvalidRecipient(f"There is no {inbound.channel} account '{inbound.to}'")
        message_uuid = await _receive(uow, owner, inbound)
        await uow.commit()
    return message_uuid


async def operator_read(uow_factory: UnitOfWorkFactory, message_uuid: str) -> None:
    async with uow_factory(write=True) as uow:
        await _read(uow, None, message_uuid)
        await uow.commit()


async def operator_messages(uow_factory: UnitOfWorkFactory, query: MessageFilter) -> MessagePage:
    async with uow_factory() as uow:
        total, items = await uow.messages.page(None, query)
    return MessagePage(items, query.number, query.size, total)
