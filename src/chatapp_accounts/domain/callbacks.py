"""Use cases of the live providers' callbacks (docs/providers.md, "Callbacks"): what Meta and
RBM report, in the domain's words (domain/providers.py), applied to the messages it names.

- A status is matched by the provider's id for the message (wamid, Messenger mid, RBM
  messageId: our uuid) and never goes backwards: `read` after `read`, a late `delivered` after
  `read`, anything after `rejected` change nothing, so a provider's duplicates apply once. A
  `read` for a message never reported `delivered` adds `delivered` first, so that every delivery
  is counted. WhatsApp's `sent` adds nothing new. A status's time is its callback's arrival:
  the providers' own are whole seconds (WhatsApp), so a `delivered` could precede its
  `submitted`.
- A status for an id not recorded yet (the callback beat the send's outcome) is held, and
  applied when the id is recorded (`release_held`); one held for 60 s is dropped and counted.
- A Messenger watermark gives its status to every message of the page to that customer that the
  provider took at or before it.
- A customer's message is routed by the receiving page id, phone_number_id or agent id to its
  account, and delivered to the linked application's inbound_url in the Messages spec's shape;
  the provider's id makes its duplicates a no-op. An account with no linked application: nothing
  is delivered, the event counted.

Each callback is one unit of work: answered 2xx only once it is committed."""

from __future__ import annotations

import time
from typing import Final

import msgspec

from .errors import InvalidMessageParams, InvalidRecipient
from .messages import add_statuses, receive
from .models import CHANNEL_PROVIDERS, Application, StatusChange, StoredMessage
from .payloads import provider_error
from .ports import UnitOfWork, UnitOfWorkFactory
from .providers import ProviderEvent, ProviderInbound, ProviderStatus, Watermark

HOLD_SECONDS: Final = 60.0

# How far along a message is; a status at or below its message's rank changes nothing.
_RANK: Final = {None: 0, "submitted": 1, "delivered": 2, "read": 3}
_FINAL: Final = ("rejected", "undeliverable", "revoked", "read")


class CallbackCounts(msgspec.Struct):
    """What a callback's events did (the metrics count them)."""

    applied: int = 0  # statuses written
    duplicate: int = 0  # statuses and inbound messages already applied
    held: int = 0  # statuses for ids not recorded yet
    unknown: int = 0  # events for an account nobody has
    inbound: int = 0  # customers' messages delivered
    unlinked: int = 0  # customers' messages to an account with no application
    ignored: int = 0  # statuses that add nothing whatever their message (WhatsApp's `sent`)


def advance(found: StoredMessage, status: str, at: float, error: dict[str, str] | None,
            ) -> list[StatusChange]:  # fmt: skip
    """The statuses a provider's report adds to a message: none when it would go backwards or
    repeat; `delivered` before a `read` that skipped it."""
    current = found.record.status
    if current in _FINAL or status == "sent":
        return []
    if status == "rejected":
        return [StatusChange("rejected", at, error)] if _RANK.get(current, 0) < 2 else []
    if _RANK[status] <= _RANK.get(current, 0):
        return []
    if status == "read" and current != "delivered":
        return [StatusChange("delivered", at), StatusChange("read", at)]
    return [StatusChange(status, at)]


class _Pass:
    """One transaction's worth of callbacks. What they name is read first, in few statements
    (`read`: the accounts, the provider ids, their messages, locked on PostgreSQL; applications
    as they come, once each). Its writes go to the database at commit, so what it applied is
    kept here too, for the events after it: a message's status, and the provider ids of the
    customers' messages it received."""

    def __init__(self, uow: UnitOfWork, now: float) -> None:
        self.uow = uow
        self.now = now  # a status's time: its callback's arrival (providers' own are coarse)
        self.routes: dict[tuple[str, str], tuple[int, str] | None] = {}
        self.ids: dict[tuple[int, str, str], str] = {}  # (tenant, channel, provider id) -> uuid
        self.messages: dict[str, StoredMessage] = {}  # uuid -> as read, then as this pass left it
        self.applications: dict[tuple[int, str], Application | None] = {}
        self.received: dict[tuple[str, str], str] = {}  # (channel, provider id) -> uuid

    async def read(self, statuses: list[tuple[int, str, str]]) -> None:
        """The messages of these (tenant, channel, provider id), in a statement or two a
        tenant and channel."""
        wanted: dict[tuple[int, str], list[str]] = {}
        for tenant, channel, provider_id in statuses:
            wanted.setdefault((tenant, channel), []).append(provider_id)
        for (tenant, channel), provider_ids in wanted.items():
            found = await self.uow.providers.find_many(tenant, channel, sorted(set(provider_ids)))
            for provider_id, message_uuid in found.items():
                self.ids[(tenant, channel, provider_id)] = message_uuid
            self.messages.update(await self.uow.messages.get_many(tenant, list(found.values())))

    async def route(self, channel: str, account: str) -> tuple[int, str] | None:
        """(tenant, external_id) of the account a provider names: a WhatsApp number by its
        phone_number_id, a page or an agent by its own id."""
        key = (channel, account)
        if key not in self.routes:
            if channel == "whatsapp":
                self.routes[key] = await self.uow.accounts.by_phone_number_id(account)
            else:
                owner = await self.uow.accounts.owner(CHANNEL_PROVIDERS[channel], account)
                self.routes[key] = (owner, account) if owner is not None else None
        return self.routes[key]

    async def find(self, tenant: int, channel: str, provider_id: str) -> str | None:
        known = self.received.get((channel, provider_id)) or self.ids.get(
            (tenant, channel, provider_id)
        )
        return known or await self.uow.providers.find(tenant, channel, provider_id)

    async def apply(self, tenant: int, message_uuid: str, status: str,
                    error: tuple[str, str] | None, counts: CallbackCounts) -> None:  # fmt: skip
        found = self.messages.get(message_uuid) or await self.uow.messages.get(tenant, message_uuid)
        if found is None:  # pruned meanwhile
            counts.unknown += 1
            return
        body = provider_error(error[0], error[1], message_uuid) if error is not None else None
        changes = advance(found, status, self.now, body)
        if not changes:
            counts.duplicate += 1
            return
        app_key = (tenant, found.record.application_id or "")
        if app_key not in self.applications:
            self.applications[app_key] = (
                await self.uow.applications.get(tenant, app_key[1]) if app_key[1] else None
            )
        await add_statuses(self.uow, found, changes, self.applications[app_key])
        record = msgspec.structs.replace(found.record, status=changes[-1].status)
        self.messages[message_uuid] = msgspec.structs.replace(found, record=record)
        counts.applied += 1

    async def status(self, tenant: int, event: ProviderStatus, counts: CallbackCounts) -> None:
        error = None
        if event.status == "rejected":
            error = (
                event.error_code or "1330",
                event.error_detail or "the provider reported it failed",
            )
        message_uuid = await self.find(tenant, event.channel, event.provider_id)
        if message_uuid is None:
            # Held with the provider's code and detail; the error is made when it is applied.
            body = {"title": error[0], "detail": error[1]} if error is not None else None
            change = StatusChange(event.status, self.now, body)
            await self.uow.providers.hold(
                tenant, event.channel, event.provider_id, change, self.now
            )
            counts.held += 1
            return
        await self.apply(tenant, message_uuid, event.status, error, counts)

    async def watermark(self, tenant: int, event: Watermark, counts: CallbackCounts) -> None:
        uuids = await self.uow.providers.before(
            tenant, "messenger", event.page_id, event.psid, event.watermark
        )
        for mid in event.mids:
            found = await self.find(tenant, "messenger", mid)
            if found is None:  # its send's outcome is not recorded yet
                change = StatusChange(event.status, self.now)
                await self.uow.providers.hold(tenant, "messenger", mid, change, self.now)
                counts.held += 1
            elif found not in uuids:
                uuids.append(found)
        for message_uuid in uuids:
            await self.apply(tenant, message_uuid, event.status, None, counts)

    async def inbound(self, tenant: int, external_id: str, event: ProviderInbound,
                      counts: CallbackCounts) -> None:  # fmt: skip
        channel, uow = event.channel, self.uow
        await uow.providers.lock(channel, event.provider_id)
        if await self.find(tenant, channel, event.provider_id) is not None:
            counts.duplicate += 1
            return
        context = None
        if event.context_provider_id is not None:
            context = await self.find(tenant, channel, event.context_provider_id)
        inbound = msgspec.structs.replace(event.message, to=external_id, context=context)
        try:
            message_uuid = await receive(uow, tenant, inbound)
        except InvalidRecipient:
            counts.unlinked += 1
            return
        except InvalidMessageParams:  # its context is not a message of this channel
            inbound = msgspec.structs.replace(inbound, context=None)
            message_uuid = await receive(uow, tenant, inbound)
        await uow.providers.add(tenant, channel, event.provider_id, message_uuid, external_id,
                                inbound.sender, self.now)  # fmt: skip
        self.received[(channel, event.provider_id)] = message_uuid
        counts.inbound += 1

    async def event(self, event: ProviderEvent, counts: CallbackCounts) -> None:
        if isinstance(event, ProviderStatus) and event.status == "sent":
            counts.ignored += 1  # nothing to look up, nothing to hold
            return
        if isinstance(event, Watermark):
            channel, account = "messenger", event.page_id
        else:
            channel, account = event.channel, event.account
        routed = await self.route(channel, account)
        if routed is None:
            counts.unknown += 1
            return
        tenant, external_id = routed
        if isinstance(event, ProviderStatus):
            await self.status(tenant, event, counts)
        elif isinstance(event, Watermark):
            await self.watermark(tenant, event, counts)
        else:
            await self.inbound(tenant, external_id, event, counts)


async def apply_callbacks(
    uow_factory: UnitOfWorkFactory, callbacks: list[list[ProviderEvent]], now: float | None = None
) -> list[CallbackCounts]:
    """Callbacks' events, in order, in one transaction (the routes gather the callbacks that
    arrive together: api/providers.py); what each callback's events did."""
    results = [CallbackCounts() for _ in callbacks]
    if not any(callbacks):
        return results
    async with uow_factory(write=True) as uow:
        one = _Pass(uow, time.time() if now is None else now)
        statuses = []
        for event in (e for events in callbacks for e in events):
            if isinstance(event, ProviderStatus) and event.status != "sent":
                routed = await one.route(event.channel, event.account)
                if routed is not None:
                    statuses.append((routed[0], event.channel, event.provider_id))
        await one.read(statuses)
        for events, counts in zip(callbacks, results, strict=True):
            for event in events:
                await one.event(event, counts)
        await uow.commit()
    return results


async def release_held(
    uow_factory: UnitOfWorkFactory, now: float | None = None, limit: int = 50
) -> tuple[int, int, int]:
    """Apply the held statuses whose id is recorded now (at most `limit`: the caller calls
    again while some were); drop those whose id is still unknown after 60 s. (applied,
    unchanged: they added nothing, dropped)."""
    now = time.time() if now is None else now
    counts = CallbackCounts()
    async with uow_factory(write=True) as uow:
        ready = await uow.providers.held_ready(limit)
        one = _Pass(uow, now)
        await one.read([(held.tenant_id, held.channel, held.provider_id) for held in ready])
        for held in ready:
            message_uuid = await one.find(held.tenant_id, held.channel, held.provider_id)
            if message_uuid is None:
                continue
            change = held.change
            error = None
            if change.error is not None:
                error = (change.error.get("title", "1330"), change.error.get("detail", ""))
            one.now = change.at  # when its callback came
            await one.apply(held.tenant_id, message_uuid, change.status, error, counts)
        await uow.providers.release([held.pk for held in ready])
        dropped = await uow.providers.expire_held(now - HOLD_SECONDS)
        await uow.commit()
    return counts.applied, counts.duplicate, dropped
