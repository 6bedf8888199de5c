"""What the use cases need from the outside. storage/ and security/ implement these; the unit
tests fake them (tests/unit/fakes.py)."""

from __future__ import annotations

from typing import Any, Protocol

from .models import (
    Account,
    Actor,
    AdminTokenRecord,
    Application,
    ApplicationKey,
    AttemptResult,
    AuditEntry,
    Conversation,
    Credentials,
    Dropped,
    FailoverItem,
    Faults,
    MessageFilter,
    MessageRecord,
    OutboxFilter,
    Provider,
    SendJob,
    SignatureCheck,
    StatusChange,
    StoredMessage,
    TenantLimits,
    TenantRecord,
    WebhookRecord,
)
from .providers import HeldStatus, Refusal, SenderCredentials, SendTry, Taken


class AccountRepository(Protocol):
    async def add(self, tenant: int, account: Account) -> bool:
        """Insert; False (and nothing written) when (provider, external_id) is taken."""

    async def get(self, tenant: int, provider: Provider, external_id: str) -> Account | None: ...

    async def linked_application(
        self, tenant: int, provider: Provider, external_id: str
    ) -> tuple[bool, Application | None]:
        """(whether the tenant has this account, the application linked to it: None when
        none is), in one look-up."""

    async def owner(self, provider: Provider, external_id: str) -> int | None: ...

    async def credentials(
        self, tenant: int, provider: Provider, external_id: str
    ) -> SenderCredentials | None:
        """What a channel needs of the account (None: the tenant has no such account): a live
        channel its credentials, the sandbox its fault switches."""

    async def senders(
        self, keys: list[tuple[int, Provider, str]]
    ) -> dict[tuple[int, Provider, str], SenderCredentials]:
        """credentials() of each (tenant, provider, external_id) found, in one statement: a
        claim's senders, whatever their tenants."""

    async def faults(self, tenant: int, provider: Provider, external_id: str) -> Faults | None:
        """The account's fault switches (None: the tenant has no such account)."""

    async def set_faults(
        self, tenant: int, provider: Provider, external_id: str, faults: Faults
    ) -> bool:
        """Replace them; False when the tenant has no such account."""

    async def by_phone_number_id(self, phone_number_id: str) -> tuple[int, str] | None:
        """(tenant, number) of the WhatsApp account with this Cloud API id."""

    async def update(
        self,
        tenant: int,
        provider: Provider,
        external_id: str,
        *,
        name: str | None,
        access_token: str | None,
        set_name: bool,
        set_access_token: bool,
    ) -> bool: ...

    async def set_application(
        self, tenant: int, provider: Provider, external_id: str, application_id: str | None
    ) -> bool: ...

    async def link(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        """Atomically set the application where none (or this one) is linked; False otherwise."""

    async def unlink(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool: ...

    async def unlink_everywhere(self, tenant: int, application_id: str) -> int: ...

    async def delete(self, tenant: int, provider: Provider, external_id: str) -> bool: ...

    async def count(self, tenant: int, provider: Provider | None) -> int:
        """How many accounts the tenant has (of this provider)."""

    async def page(
        self, tenant: int, api_key: str, provider: Provider | None, offset: int, limit: int,
        total: int,
    ) -> list[Account]:  # fmt: skip
        """`limit` of the tenant's accounts from `offset`, in creation order; `total` is
        count()'s answer (deep pages are read from the end)."""


class ApplicationRepository(Protocol):
    async def add(self, tenant: int, application: Application) -> None: ...

    async def get(self, tenant: int, application_id: str) -> Application | None: ...

    async def replace(self, tenant: int, application: Application) -> bool: ...

    async def delete(self, tenant: int, application_id: str) -> bool: ...

    async def page(self, tenant: int, offset: int, limit: int) -> list[Application]: ...

    async def count(self, tenant: int) -> int: ...

    async def signing_key(self, application_id: str) -> ApplicationKey | None:
        """The application's key and its owner, while the owner is not revoked."""


class TenantRepository(Protocol):
    async def add(self, api_key: str, secret_hash: str, signature_secret: str) -> int: ...

    async def set_signature_secret(self, api_key: str, signature_secret: str) -> bool:
        """Replace the tenant's webhook signature secret; False when there is no such tenant."""

    async def by_api_key(self, api_key: str) -> TenantRecord | None: ...

    async def api_key_of(self, tenant: int) -> str | None:
        """The api_key of the tenant with this id (None: no such tenant)."""

    async def signature_secret(self, api_key: str) -> str | None:
        """The tenant's webhook signature secret, decrypted (None: it has none)."""

    async def all(self) -> list[TenantRecord]: ...

    async def revoke(self, api_key: str) -> bool: ...

    async def set_revoked(self, api_key: str, revoked: bool) -> bool: ...

    async def delete(self, api_key: str) -> bool:
        """The tenant and, by the schema's cascades, everything of it."""

    async def queued_work(self, api_key: str, now: float) -> Dropped:
        """The tenant's pending send jobs and webhooks that no lease holds at `now`."""

    async def count(self) -> int: ...

    async def limits(self, api_key: str) -> TenantLimits | None:
        """The tenant's own limits; None for no such tenant."""

    async def set_limits(self, api_key: str, limits: TenantLimits) -> bool: ...


class AdminTokenRepository(Protocol):
    async def add(self, name: str, token_hash: str, scopes: tuple[str, ...], at: float) -> bool:
        """False: a token of that name exists (revoked or not)."""

    async def by_hash(self, token_hash: str) -> AdminTokenRecord | None: ...

    async def all(self) -> list[AdminTokenRecord]: ...

    async def revoke(self, name: str) -> bool: ...


class AuditRepository(Protocol):
    async def add(self, at: float, actor: Actor, action: str, tenant: str | None,
                  outcome: str) -> None: ...  # fmt: skip

    async def find(
        self,
        actor: str | None,
        tenant: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[AuditEntry]:
        """Oldest first."""  # fmt: skip


class MessageRepository(Protocol):
    """Messages and their statuses. Writes refer to messages by uuid and are committed with the
    unit of work (storage/batch.py: in batches with other units')."""

    async def add(
        self,
        tenant: int,
        record: MessageRecord,
        *,
        root: str | None,
        webhook_url: str | None,
        workflow: dict[str, str] | None,
    ) -> None:
        """Insert (`root`: the uuid of its workflow's first message; None: it is the first)."""

    async def add_status(
        self, tenant: int, message_uuid: str, change: StatusChange, *, current: bool = True
    ) -> None:
        """Record a status and (`current`) make it the message's current one."""

    async def get_many(self, tenant: int, uuids: list[str]) -> dict[str, StoredMessage]:
        """The tenant's messages with these uuids (one statement)."""

    async def get(self, tenant: int | None, uuid: str) -> StoredMessage | None:
        """The tenant's message (tenant None: anyone's, for the operator)."""

    async def conversations(self, tenant: int, limit: int) -> list[Conversation]:
        """The tenant's conversations, the latest first."""

    async def activity(self, tenant: int) -> tuple[int, ...]:
        """A mark that changes when the tenant's messages, statuses or webhooks may have."""

    async def page(
        self, tenant: int | None, query: MessageFilter
    ) -> tuple[int, list[MessageRecord]]:
        """(how many match, the page's messages newest first, with statuses and webhooks)."""

    async def redact(self, tenant: int | None, uuid: str, now: float) -> tuple[str, bool] | None:
        """Remove the message's content and its webhooks' (storage/retention.py) at once, in
        the unit's own transaction (`write=True`): (its direction, whether it is still queued:
        its send job pending, and then nothing is removed). None: the tenant has no such
        message (tenant None: anyone's, for the operator). One already redacted is left as
        it is."""


class WebhookRepository(Protocol):
    """The outbox: webhooks written in the transaction of what caused them, sent later by a
    dispatcher (delivery/)."""

    async def add(
        self,
        tenant: int,
        message_uuid: str,
        order_uuid: str,
        application_id: str,
        kind: str,
        url: str,
        body: dict[str, Any],
        due_at: float,
    ) -> None:
        """`order_uuid`: the workflow's first message; its webhooks go out in order."""

    async def delivered(self, result: AttemptResult) -> None:
        """A webhook's attempt that delivered it, and its attempt record (the dispatcher's
        common case, written in the batches of storage/batch.py)."""

    async def listing(self, where: OutboxFilter, limit: int) -> list[WebhookRecord]:
        """The webhooks `where` says, newest first."""

    async def redeliver(self, webhook_id: int, now: float, tenant: int | None = None) -> str | None:
        """Make a webhook pending again, due now, with a fresh retry window (`tenant`: only
        one of its own): its tenant's api_key (None: no such webhook, or its content is gone)."""

    async def redeliver_failed(
        self, where: OutboxFilter, after: int, limit: int, now: float
    ) -> tuple[int, int, int, int]:
        """redeliver, of up to `limit` failed webhooks `where` says past pk `after`, in pk
        order, but those whose message's content was removed: (read, redelivered, skipped, the
        last pk read)."""

    async def get(self, tenant: int | None, webhook_id: int) -> WebhookRecord | None:
        """The tenant's webhook (tenant None: anyone's, for the operator)."""

    async def previous(self, webhook: WebhookRecord) -> WebhookRecord | None:
        """The webhook of the same message made before it."""

    async def resend(
        self, tenant: int | None, webhook_id: int, body: bytes, now: float
    ) -> tuple[int, str] | None:
        """A copy of the webhook with another body, due now: its id and its tenant's api_key
        (None: no such webhook)."""


class ProviderMessageRepository(Protocol):
    """Live channels' ids (docs/providers.md): the provider's id of each message sent or
    received through Meta or RBM, and statuses held until their id is recorded."""

    async def add(self, tenant: int, channel: str, provider_id: str, message_uuid: str,
                  account: str, peer: str, at: float) -> None:  # fmt: skip
        """Record it (an id already recorded is left as it is)."""

    async def lock(self, channel: str, provider_id: str) -> None:
        """Until the unit ends, no other unit looks this id up (a provider's duplicates)."""

    async def find(self, tenant: int, channel: str, provider_id: str) -> str | None:
        """The uuid of the message with this provider id."""

    async def find_many(self, tenant: int, channel: str, provider_ids: list[str],
                        ) -> dict[str, str]:  # fmt: skip
        """provider id -> uuid, of those recorded (in a write unit on PostgreSQL, their
        messages locked, in one order)."""

    async def of_message(self, tenant: int, channel: str, message_uuid: str) -> str | None:
        """The provider's id of a message."""

    async def before(self, tenant: int, channel: str, account: str, peer: str,
                     watermark: float) -> list[str]:  # fmt: skip
        """Outbound messages from `account` to `peer` the provider took at or before
        `watermark`, still `submitted` or `delivered` (a Messenger watermark's)."""

    async def hold(self, tenant: int, channel: str, provider_id: str, change: StatusChange,
                   received_at: float) -> None:  # fmt: skip
        """Keep a status whose id is not recorded yet."""

    async def held_ready(self, limit: int) -> list[HeldStatus]:
        """Held statuses whose id is recorded now."""

    async def release(self, pks: list[int]) -> None: ...

    async def expire_held(self, before: float) -> int:
        """Drop statuses held since before `before`; how many."""


class SendJobRepository(Protocol):
    """The hand-over: a job per outbound message, claimed by the senders (delivery/)."""

    async def add(
        self,
        tenant: int,
        message_uuid: str,
        status_url: str | None,
        failover: list[FailoverItem],
        due_at: float,
    ) -> None: ...

    async def claim(self, now: float, lease_until: float, limit: int) -> list[SendJob]:
        """Up to `limit` due jobs, leased until `lease_until` (another process's are skipped);
        in a unit of work of its own (`write=True`)."""

    async def finish(self, job: int, provider_message_id: str | None) -> None:
        """The channel took the message (or refused it for good): the job is done."""

    async def retry(self, job: int, due_at: float) -> None:
        """Not taken this time: due again at `due_at`, its lease given back."""

    async def defer(self, job: SendJob, due_at: float) -> None:
        """Not tried (its account is throttled or at its rate): due again at `due_at`, its
        lease given back, the claim not counted as a try (the retry horizon still counts from
        its first claim)."""

    async def cancel(self, message: int) -> None:
        """The message was revoked before its job ran."""

    async def existing(self, pks: list[int]) -> set[int]:
        """Those of these send jobs still stored."""

    async def backlog(self, now: float) -> tuple[int, float | None]:
        """(due jobs, when the oldest of them came due)."""


class Channel(Protocol):
    """Where an account's messages go: the sandbox (channels/sandbox.py) or a live provider
    (channels/graph.py, channels/rbm.py)."""

    # Messages (or calls) a second each account may send at; None: no limit (the sandbox).
    rate: float | None
    # Whether a send needs its account's credentials (SenderCredentials) and the provider id
    # of the message it replies to.
    live: bool

    async def submit(self, send: SendTry) -> Taken | Refusal:
        """Send it: `Taken` with the statuses known once it is handed over, in order (the
        sandbox knows them all at once; a provider knows `submitted` or `rejected`, the rest
        comes later) and the provider's id for it; or a `Refusal` to try again."""

    async def revoke(self, message: MessageRecord, credentials: SenderCredentials | None,
                     ) -> Refusal | None:  # fmt: skip
        """Take back an outbound message not yet delivered (RCS); None: done."""

    async def mark_read(self, message: MessageRecord, provider_id: str,
                        credentials: SenderCredentials | None) -> Refusal | None:  # fmt: skip
        """Tell the provider the customer's message was read (WhatsApp); None: done."""

    async def close(self) -> None:
        """Let go of what it holds (connections)."""


class Channels(Protocol):
    """The channel each message channel (messenger, whatsapp, ...) sends through."""

    def get(self, channel: str) -> Channel: ...

    async def close(self) -> None: ...


class Load(Protocol):
    """Whether the process takes more work: the due backlog against its bound."""

    def refuse(self) -> float | None:
        """None: take it; else the seconds after which to ask again (Retry-After)."""


class UnitOfWork(Protocol):
    """One transaction. Use cases call commit(); leaving the block without it rolls back."""

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def applications(self) -> ApplicationRepository: ...

    @property
    def tenants(self) -> TenantRepository: ...

    @property
    def messages(self) -> MessageRepository: ...

    @property
    def admin_tokens(self) -> AdminTokenRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def jobs(self) -> SendJobRepository: ...

    @property
    def providers(self) -> ProviderMessageRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...

    async def commit(self) -> None:
        """Commit what the unit wrote. Without `write`, its message rows are committed in a
        batch with other units' (storage/batch.py)."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = False) -> UnitOfWork:
        """`write`: a transaction of its own from the first statement (read-then-write rules:
        accounts, applications); else reads see committed rows and writes go in batches."""


class Security(Protocol):
    """Secrets, hashes, keys and tokens: the use cases decide, security/ computes. And the
    tenants' limits (docs/limits.md): whether a request may go on."""

    def admit(self, tenant_id: int, api: str, credentials: Credentials) -> None:
        """Count a request of the tenant's on `api` (domain.limits), made with these good
        credentials: Throttled past its limit. In memory: it never waits."""

    def refuse_early(self, credentials: Credentials, api: str) -> None:
        """Throttled, before the credentials are checked again, when they were good before and
        their tenant's second on `api` is spent."""

    def limit(self, tenant_id: int, api: str) -> int:
        """The tenant's limit per second on `api`, as this process last read it."""

    @property
    def dummy_hash(self) -> str:
        """A hash no secret matches, compared against when an api_key is unknown."""

    def new_api_key(self) -> str: ...

    def new_api_secret(self) -> str: ...

    def new_signature_secret(self) -> str: ...

    def hash_secret(self, secret: str) -> str: ...

    def verify_secret(self, secret: str, stored_hash: str) -> bool:
        """Constant-time."""

    def check_signature(
        self, authorization: str | None, body: bytes, secret: str | None
    ) -> SignatureCheck:
        """A webhook's Authorization header checked as its receiver would (SignatureCheck)."""

    def session_binding(self, secret_hash: str) -> str:
        """What an inbox session holds of the tenant's secret: a digest of its stored hash."""

    def verify_session(self, binding: str, secret_hash: str) -> bool:
        """session_binding(secret_hash) == binding, in constant time."""

    async def new_key_pair(self) -> tuple[str, str]:
        """(private key PEM, public key PEM) of a new RSA key pair (made off the event loop:
        it takes tens of milliseconds)."""

    def new_admin_token(self) -> str:
        """A high-entropy random token for the admin API."""

    def hash_token(self, token: str) -> str:
        """SHA-256 (hex) of an admin token: what is stored and looked up."""

    def claimed_application(self, token: str) -> str | None:
        """The application a JWT says it is of, before it is verified (None: it names none)."""

    def verify_token(self, token: str, path: str, key: ApplicationKey | None) -> ApplicationKey:
        """`key` (the current key of the token's claimed application, None if there is no such
        application), once the token is shown to be signed with it; raises NotAuthenticated
        (a bad token) or AccessDenied (its `acl` does not cover `path`)."""
