"""What live providers (Meta's Graph API for Messenger and WhatsApp, Google's RBM for RCS) say,
in the domain's words: a send's answer (taken, or to be tried again, or refused) and what their
callbacks report (a status for one provider message id, a Messenger watermark, a customer's
message). The provider modules (channels/) translate their wire formats into these; the use
cases (domain/callbacks.py) act on them. Nothing here knows HTTP or a wire format."""

from __future__ import annotations

from typing import Literal

import msgspec

from .models import NO_FAULTS, Faults, InboundInput, SendJob, StatusChange


class SenderCredentials(msgspec.Struct, frozen=True):
    """What a channel needs of the account a message is sent from, unsealed for the try: on a
    live channel, Messenger the page token; WhatsApp the Cloud API's phone number id and access
    token (and the WABA id); RCS nothing (the deployment's service account sends for every
    agent). The sandbox channel, the account's fault switches (live channels ignore them)."""

    access_token: str | None = None
    phone_number_id: str | None = None
    waba_id: str | None = None
    faults: Faults = NO_FAULTS

    def __repr__(self) -> str:  # never a token in a log line or a traceback
        return (
            f"SenderCredentials(phone_number_id={self.phone_number_id!r}, token=<hidden>, "
            f"faults={self.faults!r})"
        )


class SendTry(msgspec.Struct, frozen=True):
    """A claimed job as its channel gets it: with what the channel needs of its account (a live
    channel its credentials, the sandbox its fault switches; None: the account is gone) and,
    on a live channel, the provider's id of the message it replies to (its `context`), when
    there is one."""

    job: SendJob
    credentials: SenderCredentials | None = None
    context_provider_id: str | None = None


class Taken(msgspec.Struct, frozen=True):
    """The channel answered: the message's statuses (`submitted`, or `rejected` with its
    error), and the provider's id for it when it took it."""

    changes: list[StatusChange]
    provider_message_id: str | None = None


class Refusal(msgspec.Struct, frozen=True):
    """A provider's answer that did not take the message, classified by its error tables.

    `retry`: transient (connection error, timeout, 5xx, 429, the codes marked retry): the
    message is tried again, after `after` seconds when the provider said so (`Retry-After`).
    `throttled`: a throttle answer (Graph 4, 613, 130429, 131056; RBM 429): if retries run out
    after it, the message ends `rejected` 1000 rather than `undeliverable` 1331; it slows
    the account only, or only that recipient when `pair` (WhatsApp 131056).
    `code`: the Vonage error code of a permanent refusal (ignored when `retry`).
    `detail`: the provider and its own code and message, e.g.
    `Graph error 100/2018001: No matching user found`; never a token."""

    retry: bool
    code: str
    detail: str
    throttled: bool = False
    pair: bool = False
    after: float | None = None


ProviderStatusName = Literal["sent", "delivered", "read", "rejected"]


class ProviderStatus(msgspec.Struct, frozen=True):
    """A callback's status for one message, by the provider's id for it (a WhatsApp wamid, a
    Messenger mid, an RBM messageId: our message uuid). `account` is the receiving identity
    (WhatsApp phone_number_id, Messenger page id, RBM agent id); `event_id` identifies the
    event for duplicates when the provider gives one (RBM eventId)."""

    channel: str  # messenger | whatsapp | rcs
    account: str
    provider_id: str
    status: ProviderStatusName
    at: float  # epoch seconds
    error_code: str | None = None  # Vonage code, for `rejected`
    error_detail: str | None = None
    event_id: str | None = None


class Watermark(msgspec.Struct, frozen=True):
    """Messenger `delivery`/`read`: every message of the page to the customer that the
    provider accepted at or before `watermark` takes `status`."""

    page_id: str
    psid: str
    status: Literal["delivered", "read"]
    watermark: float  # epoch seconds
    mids: list[str] = []


class ProviderInbound(msgspec.Struct, frozen=True):
    """A customer's message to a page, number or agent: `account` is the receiving identity as
    the provider names it (page id, phone_number_id, agent id); `message` is in the sandbox's
    inbound terms (InboundInput, `to` left for the use case to fill with the account's
    external_id, `context` None); `context_provider_id` is the provider id of the message it
    replies to, if any."""

    channel: str
    account: str
    message: InboundInput
    provider_id: str
    context_provider_id: str | None = None


ProviderEvent = ProviderStatus | Watermark | ProviderInbound


class HeldStatus(msgspec.Struct, frozen=True):
    """A status kept until the provider id it names is recorded (storage's held_statuses)."""

    pk: int
    tenant_id: int
    channel: str
    provider_id: str
    change: StatusChange
