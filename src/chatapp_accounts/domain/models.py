"""Plain values the use cases take and return.

They are frozen msgspec Structs rather than frozen dataclasses: the same immutable values with
the same fields, made about ten times faster (0.07 µs against 0.7 µs), which counts for the
accounts of a page, made one per row.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from . import rules


class Provider(StrEnum):
    MESSENGER = "messenger"
    VIBER_SERVICE_MSG = "viber_service_msg"
    WHATSAPP = "whatsapp"
    RCS = "rcs"

    @classmethod
    def parse(cls, value: str) -> Provider | None:
        try:
            return cls(value)
        except ValueError:
            return None


PROVIDERS = tuple(p.value for p in Provider)


class Tenant(msgspec.Struct, frozen=True):
    id: int
    api_key: str
    application_id: str | None = None  # the application whose JWT the request came with


class BasicCredentials(msgspec.Struct, frozen=True):
    """`Authorization: Basic base64(api_key:api_secret)`, and the path it was sent to (whose
    API's limit the request counts against; none for the command line's own calls)."""

    api_key: str
    api_secret: str
    path: str = ""


class BearerCredentials(msgspec.Struct, frozen=True):
    """`Authorization: Bearer <JWT>`, and the path it was sent to (its `acl` must cover it)."""

    token: str
    path: str


class SessionCredentials(msgspec.Struct, frozen=True):
    """The web inbox's signed session (api/inbox/session.py): the tenant's api_key and a
    binding to its secret's hash (security: `session_binding`), made when it signed in with
    Basic credentials. Never the secret itself."""

    api_key: str
    binding: str
    path: str = ""


class OperatorCredentials(msgspec.Struct, frozen=True):
    """An operator acting for the tenant of this api_key (the admin API, once its token was
    authorized for the change; docs/operations.md). Never parsed from a request's headers:
    only the admin routes make one. An unknown tenant is TenantNotFound, a suspended one
    TenantSuspended, never a 401."""

    api_key: str


# Who a request says it is, parsed once from its Authorization header (or the inbox's session
# cookie), or the tenant an operator acts for; the use cases decide.
Credentials = BasicCredentials | BearerCredentials | SessionCredentials | OperatorCredentials


class ApplicationKey(msgspec.Struct, frozen=True):
    """The key that verifies an application's JWTs, and the tenant the tokens act as."""

    tenant_id: int
    api_key: str
    public_key: str


class TenantLimits(msgspec.Struct, frozen=True):
    """A tenant's own limits per second (docs/limits.md); None: the settings' default."""

    requests_per_second: int | None = None
    messages_per_second: int | None = None


class TenantRecord(msgspec.Struct, frozen=True):
    id: int
    api_key: str
    secret_hash: str
    revoked: bool
    created_at: str


class NewTenant(msgspec.Struct, frozen=True):
    """A tenant just made: the only time its api_secret exists in clear, and the one time its
    webhook signature secret is shown."""

    api_key: str
    api_secret: str
    signature_secret: str


class Account(msgspec.Struct, frozen=True):
    provider: Provider
    external_id: str
    api_key: str  # the owner's
    name: str | None = None
    access_token: str | None = None  # Messenger's page token; a live WhatsApp number's token
    application_id: str | None = None
    # A live WhatsApp number's Cloud API ids (docs/providers.md); never in a response.
    phone_number_id: str | None = None
    waba_id: str | None = None

    @property
    def applications(self) -> list[str]:
        return [self.application_id] if self.application_id else []


class AccountPage(msgspec.Struct, frozen=True):
    items: list[Account]
    page_number: int
    page_size: int
    total_items: int
    provider: Provider | None = None  # the filter it was listed with

    @property
    def total_pages(self) -> int:
        return rules.page_count(self.total_items, self.page_size)


class Application(msgspec.Struct, frozen=True):
    id: str
    name: str
    public_key: str
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    privacy: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def has_messages(self) -> bool:
        return isinstance(self.capabilities.get("messages"), dict)


class NewApplication(msgspec.Struct, frozen=True):
    """An application just made; private_key is set only when the server generated the pair."""

    application: Application
    private_key: str | None


class ApplicationPage(msgspec.Struct, frozen=True):
    items: list[Application]
    page: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return rules.page_count(self.total_items, self.page_size)


class ApplicationInput(msgspec.Struct, frozen=True):
    """An application as a create or update gives it (absent parts are None)."""

    name: str
    capabilities: dict[str, Any] | None = None
    public_key: str | None = None
    privacy: dict[str, Any] | None = None


class PageRequest(msgspec.Struct, frozen=True):
    """Which page of a list, and of which provider's accounts (None: all)."""

    number: int
    size: int
    provider: Provider | None = None


# Messages (docs/messages.md) -------------------------------------------------------------

# The Messages API's channels this server sends through, and the provider of their accounts.
CHANNEL_PROVIDERS: dict[str, Provider] = {
    "messenger": Provider.MESSENGER,
    "whatsapp": Provider.WHATSAPP,
    "viber_service": Provider.VIBER_SERVICE_MSG,
    "rcs": Provider.RCS,
}


class Faults(msgspec.Struct, frozen=True):
    """An account's fault switches, which the sandbox channel obeys on every send from it
    (live channels ignore them): `delay`, seconds it waits before it takes a send (0: none);
    `fail`, a failure it forces (`rejected` with error 1282, or `submitted` then
    `undeliverable` with 1260, as the reserved recipients end; None: none). Their bounds are
    rules.sandbox_delay_problem and rules.sandbox_fail_problem."""

    delay: float = 0.0
    fail: str | None = None


NO_FAULTS = Faults()


class OutboundMessage(msgspec.Struct, frozen=True):
    """One message of a send, checked against the spec: `content` is its body as given (without
    `failover`); the fields the server acts on are read out of it."""

    channel: str
    message_type: str
    to: str
    sender: str  # "from"
    content: dict[str, Any]
    client_ref: str | None = None
    webhook_url: str | None = None


class FailoverItem(msgspec.Struct, frozen=True):
    """A message of a send's failover list still to be sent, with where its statuses go."""

    message: OutboundMessage
    application_id: str
    status_url: str | None


class SendJob(msgspec.Struct, frozen=True):
    """A message handed over to be sent, as a sender claims it (storage/jobs.py)."""

    pk: int
    tenant_id: int
    message: OutboundMessage
    message_uuid: str
    root: str  # the uuid of its workflow's first message
    application_id: str
    status_url: str | None  # where its status webhooks go (fixed when it was accepted)
    workflow: dict[str, str] | None
    attempts: int  # this one included
    first_attempt_at: float
    outcome_unknown: bool  # claimed again after a lease ran out mid-try
    failover: list[FailoverItem]
    created_at: float


class StatusChange(msgspec.Struct, frozen=True):
    """What a channel says became of a message: a status, when, and the spec's `error` object
    for `rejected` and `undeliverable`."""

    status: str
    at: float  # epoch seconds
    error: dict[str, str] | None = None


class InboundInput(msgspec.Struct, frozen=True):
    """A simulated customer's message (sandbox): to an account, in the spec's inbound shape."""

    channel: str
    to: str  # the account's external_id
    sender: str  # the customer
    message_type: str
    content: dict[str, Any]  # the message_type's fields (text, image, ...), as given
    context: str | None = None  # the message_uuid replied to
    profile_name: str | None = None  # WhatsApp's profile.name


class Sent(msgspec.Struct, frozen=True):
    """The answer to a send."""

    message_uuid: str
    channel: str
    workflow_id: str | None = None


class StatusRecord(msgspec.Struct, frozen=True):
    status: str
    at: float
    error: dict[str, str] | None = None


class AttemptRecord(msgspec.Struct, frozen=True):
    at: float
    url: str
    status_code: int | None
    error: str | None
    next_attempt_at: float | None
    request_headers: dict[str, str] | None = None  # None: nothing was sent (or before 0009)
    answer: str | None = None  # the start of the answer's body
    latency: float | None = None  # seconds


class SignatureCheck(msgspec.Struct, frozen=True):
    """What a receiver would find checking an attempt's signature with the tenant's secret
    (security/webhooks.py): the token's claims, the body's SHA-256 against `payload_hash`, and
    why it does not verify, if it does not."""

    claims: dict[str, Any]
    body_hash: str
    hash_matches: bool
    verified: bool
    reason: str | None = None


class WebhookDetail(msgspec.Struct, frozen=True):
    """One webhook as the inbox shows it: its record, each attempt's signature check (in the
    order of `record.attempts`; None: nothing was sent), and the webhook of the same message
    before it, for a diff."""

    record: WebhookRecord
    checks: list[SignatureCheck | None]
    previous: WebhookRecord | None


class Conversation(msgspec.Struct, frozen=True):
    """An account's thread with one customer: how many messages, and the latest."""

    channel: str
    account: str
    peer: str
    messages: int
    last: MessageRecord


class AttemptResult(msgspec.Struct, frozen=True):
    """A webhook's attempt: its outcome, what the policy decided (domain/webhooks.py) and what
    the inbox shows of it."""

    pk: int
    tenant_id: int
    order_key: int
    at: float
    url: str
    status_code: int | None
    error: str | None
    state: str
    next_attempt_at: float | None
    first_attempt_at: float
    retried: bool  # it had been tried before: webhooks behind it may wait on its retry
    request_headers: str | None = None  # JSON: the headers sent (None: nothing was sent)
    answer: str | None = None  # the start of the answer's body
    latency: float | None = None  # seconds, from the attempt's start to its outcome


class WebhookRecord(msgspec.Struct, frozen=True):
    id: int
    message_uuid: str
    api_key: str
    kind: str  # "status" | "inbound"
    url: str
    state: str  # "pending" | "delivered" | "failed"
    attempts: list[AttemptRecord]
    created_at: float
    next_attempt_at: float | None
    body: bytes
    # Its message's content was removed (retention, redaction): it cannot be sent again.
    content_removed: bool = False


class StoredMessage(msgspec.Struct, frozen=True):
    """A message as the use cases read it back: its record, and what only the server uses."""

    pk: int
    root: str  # the uuid of its workflow's first message (its own when it is the first)
    tenant_id: int
    record: MessageRecord
    webhook_url: str | None
    workflow: dict[str, str] | None
    job: str | None = None  # its send job's state (pending, done, cancelled); None: it has none


class MessageRecord(msgspec.Struct, frozen=True):
    uuid: str
    direction: str  # "outbound" | "inbound"
    channel: str
    message_type: str
    to: str
    sender: str
    status: str | None
    application_id: str | None
    client_ref: str | None
    created_at: float
    content: dict[str, Any]
    statuses: list[StatusRecord] = msgspec.field(default_factory=list)
    webhooks: list[WebhookRecord] = msgspec.field(default_factory=list)

    @property
    def conversation(self) -> tuple[str, str]:  # (used by storage to key the thread)
        """(the account's id, the customer's), whichever way the message went."""
        if self.direction == "outbound":
            return self.sender, self.to
        return self.to, self.sender


class MessageFilter(msgspec.Struct, frozen=True):
    """Which of a tenant's messages a sandbox listing shows, and which page."""

    number: int = 1
    size: int = 10
    account: str | None = None  # an external_id: the messages sent from or to it
    direction: str | None = None
    status: str | None = None
    # The web inbox's and the `q` parameter's (domain/search.py).
    peer: str | None = None  # the customer: with `account` and `channel`, one conversation
    channel: str | None = None
    to: str | None = None
    sender: str | None = None
    message_type: str | None = None
    before: float | None = None  # created before (epoch seconds)
    after: float | None = None
    words: tuple[str, ...] = ()  # each found in the content
    uuid: str | None = None  # one message


class MessagePage(msgspec.Struct, frozen=True):
    items: list[MessageRecord]
    page_number: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return rules.page_count(self.total_items, self.page_size)


# The operators' (domain/admin.py, docs/operations.md).
class AdminTokenRecord(msgspec.Struct, frozen=True):
    """An admin token as stored: its name and scopes, never the token."""

    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool


class NewAdminToken(msgspec.Struct, frozen=True):
    """A token just made: the only time it exists in clear."""

    name: str
    token: str
    scopes: tuple[str, ...]


class Actor(msgspec.Struct, frozen=True):
    """Who changes something, for the audit log: an admin token's name (with the request's id),
    or `cli`."""

    name: str
    request_id: str | None = None


CLI = Actor("cli")


class AuditEntry(msgspec.Struct, frozen=True):
    id: int
    at: float
    actor: str
    action: str
    tenant: str | None
    request_id: str | None
    outcome: str


class OutboxFilter(msgspec.Struct, frozen=True):
    """Which webhooks of the outbox the operator lists or redelivers: by state, by tenant (its
    api_key), made in [since, until) (seconds since the epoch). None: any."""

    state: str | None = None
    tenant: str | None = None
    since: float | None = None
    until: float | None = None


class Dropped(msgspec.Struct, frozen=True):
    """A deleted tenant's queued work, deleted with it: its pending send jobs and webhooks that
    no sender or dispatcher held (those in flight are counted by the one holding them)."""

    send_jobs: int
    webhooks: int


class Redelivered(msgspec.Struct, frozen=True):
    """What redelivering the failed webhooks did: how many are pending again, and how many were
    left failed because their message's content was removed (retention, redaction)."""

    redelivered: int
    skipped: int


class RedactRequest(msgspec.Struct, frozen=True):
    """A Redact API request (docs/messages.md, "Redaction"): the message's uuid, the product
    (`messages`) and, optionally, which way it went."""

    id: str
    product: str
    type: str | None = None  # "inbound" | "outbound"
