"""In-memory fakes of the domain's ports: the use cases run on them without SQL or HTTP.

The unit of work keeps a committed state and a working copy; leaving the block without
commit() throws the working copy away, as a rolled-back transaction does.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chatapp_accounts.domain.errors import AccessDenied, NotAuthenticated, Throttled
from chatapp_accounts.domain.models import (
    NO_FAULTS,
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
    OutboundMessage,
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
from chatapp_accounts.domain.providers import HeldStatus, SenderCredentials


@dataclass
class State:
    tenants: dict[str, TenantRecord] = field(default_factory=dict)
    applications: dict[str, tuple[int, Application]] = field(default_factory=dict)
    accounts: dict[tuple[Provider, str], tuple[int, Account]] = field(default_factory=dict)
    signature_secrets: dict[str, str] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Messages by uuid, their statuses, the outbox, the send jobs by pk.
    messages: dict[str, FakeMessage] = field(default_factory=dict)
    statuses: list[tuple[str, StatusChange]] = field(default_factory=list)
    webhooks: list[FakeWebhook] = field(default_factory=list)
    jobs: dict[int, FakeJob] = field(default_factory=dict)
    # Live channels: (channel, provider id) -> (tenant, message uuid, account, peer, at);
    # held statuses by pk; WhatsApp Cloud API ids -> (tenant, number).
    provider_ids: dict[tuple[str, str], tuple[int, str, str, str, float]] = field(
        default_factory=dict
    )
    held: dict[int, tuple[HeldStatus, float]] = field(default_factory=dict)
    phone_numbers: dict[str, tuple[int, str]] = field(default_factory=dict)
    # The sandbox's fault switches of accounts that have any.
    faults: dict[tuple[Provider, str], Faults] = field(default_factory=dict)
    admin_tokens: dict[str, tuple[str, AdminTokenRecord]] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    limits: dict[str, TenantLimits] = field(default_factory=dict)


@dataclass
class FakeMessage:
    pk: int
    tenant: int
    record: MessageRecord
    root: str
    webhook_url: str | None
    workflow: dict[str, str] | None


@dataclass
class FakeWebhook:
    tenant: int
    message_uuid: str
    order_uuid: str
    application_id: str
    kind: str
    url: str
    body: dict[str, Any]
    due_at: float


@dataclass
class FakeJob:
    pk: int
    tenant: int
    message_uuid: str
    status_url: str | None
    failover: list[FailoverItem]
    due_at: float
    state: str = "pending"
    attempts: int = 0
    first_attempt_at: float | None = None
    claimed_until: float | None = None
    provider_message_id: str | None = None


class FakeAccounts:
    def __init__(self, state: State, factory: FakeUnitOfWorkFactory | None = None) -> None:
        self.s = state
        self.factory = factory

    def _api_key(self, tenant: int) -> str:
        return next(t.api_key for t in self.s.tenants.values() if t.id == tenant)

    async def add(self, tenant: int, account: Account) -> bool:
        key = (account.provider, account.external_id)
        if key in self.s.accounts:
            return False
        self.s.accounts[key] = (tenant, account)
        return True

    async def get(self, tenant: int, provider: Provider, external_id: str) -> Account | None:
        return self._get(tenant, provider, external_id)

    def _get(self, tenant: int, provider: Provider, external_id: str) -> Account | None:
        found = self.s.accounts.get((provider, external_id))
        return found[1] if found and found[0] == tenant else None

    async def linked_application(
        self, tenant: int, provider: Provider, external_id: str
    ) -> tuple[bool, Application | None]:
        account = self._get(tenant, provider, external_id)
        if account is None:
            return False, None
        if account.application_id is None:
            return True, None
        found = self.s.applications.get(account.application_id)
        return True, found[1] if found is not None and found[0] == tenant else None

    async def credentials(
        self, tenant: int, provider: Provider, external_id: str
    ) -> SenderCredentials | None:
        account = self._get(tenant, provider, external_id)
        if account is None:
            return None
        faults = self.s.faults.get((provider, external_id), NO_FAULTS)
        return SenderCredentials(
            account.access_token, account.phone_number_id, account.waba_id, faults
        )

    async def senders(
        self, keys: list[tuple[int, Provider, str]]
    ) -> dict[tuple[int, Provider, str], SenderCredentials]:
        if self.factory is not None:
            self.factory.sender_reads += 1
        found = {key: await self.credentials(*key) for key in keys}
        return {key: c for key, c in found.items() if c is not None}

    async def faults(self, tenant: int, provider: Provider, external_id: str) -> Faults | None:
        if self._get(tenant, provider, external_id) is None:
            return None
        return self.s.faults.get((provider, external_id), NO_FAULTS)

    async def set_faults(
        self, tenant: int, provider: Provider, external_id: str, faults: Faults
    ) -> bool:
        if self._get(tenant, provider, external_id) is None:
            return False
        self.s.faults[(provider, external_id)] = faults
        return True

    async def by_phone_number_id(self, phone_number_id: str) -> tuple[int, str] | None:
        for owner, account in self.s.accounts.values():
            if account.phone_number_id == phone_number_id:
                return owner, account.external_id
        return None

    async def owner(self, provider: Provider, external_id: str) -> int | None:
        found = self.s.accounts.get((provider, external_id))
        return found[0] if found else None

    def _replace(
        self, tenant: int, provider: Provider, external_id: str, **changes: object
    ) -> bool:
        account = self._get(tenant, provider, external_id)
        if account is None:
            return False
        self.s.accounts[(provider, external_id)] = (
            tenant,
            msgspec.structs.replace(account, **changes),
        )
        return True

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
    ) -> bool:
        changes: dict[str, object] = {}
        if set_name:
            changes["name"] = name
        if set_access_token:
            changes["access_token"] = access_token
        return self._replace(tenant, provider, external_id, **changes)

    async def set_application(
        self, tenant: int, provider: Provider, external_id: str, application_id: str | None
    ) -> bool:
        return self._replace(tenant, provider, external_id, application_id=application_id)

    async def link(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        account = self._get(tenant, provider, external_id)
        if account is None or account.application_id not in (None, application_id):
            return False
        return self._replace(tenant, provider, external_id, application_id=application_id)

    async def unlink(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        account = self._get(tenant, provider, external_id)
        if account is None or account.application_id != application_id:
            return False
        return self._replace(tenant, provider, external_id, application_id=None)

    async def unlink_everywhere(self, tenant: int, application_id: str) -> int:
        return self.unlink_all(tenant, application_id)

    def unlink_all(self, tenant: int, application_id: str) -> int:
        linked = [
            (p, e)
            for (p, e), (t, a) in self.s.accounts.items()
            if t == tenant and a.application_id == application_id
        ]
        for p, e in linked:
            self._replace(tenant, p, e, application_id=None)
        return len(linked)

    async def delete(self, tenant: int, provider: Provider, external_id: str) -> bool:
        if self._get(tenant, provider, external_id) is None:
            return False
        del self.s.accounts[(provider, external_id)]
        self.s.faults.pop((provider, external_id), None)
        return True

    def _mine(self, tenant: int, provider: Provider | None) -> list[Account]:
        return [
            a
            for t, a in self.s.accounts.values()
            if t == tenant and (provider is None or a.provider is provider)
        ]

    async def count(self, tenant: int, provider: Provider | None) -> int:
        return len(self._mine(tenant, provider))

    async def page(
        self, tenant: int, api_key: str, provider: Provider | None, offset: int, limit: int,
        total: int,
    ) -> list[Account]:  # fmt: skip
        return self._mine(tenant, provider)[offset : offset + limit]


class FakeApplications:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, tenant: int, application: Application) -> None:
        self.s.applications[application.id] = (tenant, application)

    async def get(self, tenant: int, application_id: str) -> Application | None:
        found = self.s.applications.get(application_id)
        return found[1] if found and found[0] == tenant else None

    async def replace(self, tenant: int, application: Application) -> bool:
        if await self.get(tenant, application.id) is None:
            return False
        self.s.applications[application.id] = (tenant, application)
        return True

    async def delete(self, tenant: int, application_id: str) -> bool:
        if await self.get(tenant, application_id) is None:
            return False
        del self.s.applications[application_id]
        FakeAccounts(self.s).unlink_all(tenant, application_id)
        return True

    async def page(self, tenant: int, offset: int, limit: int) -> list[Application]:
        mine = [a for t, a in self.s.applications.values() if t == tenant]
        return mine[offset : offset + limit]

    async def count(self, tenant: int) -> int:
        return sum(1 for t, _ in self.s.applications.values() if t == tenant)

    async def signing_key(self, application_id: str) -> ApplicationKey | None:
        found = self.s.applications.get(application_id)
        if found is None:
            return None
        owner = next(t for t in self.s.tenants.values() if t.id == found[0])
        if owner.revoked:
            return None
        return ApplicationKey(owner.id, owner.api_key, found[1].public_key)


class FakeTenants:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, api_key: str, secret_hash: str, signature_secret: str) -> int:
        tenant_id = next(self.s.ids)
        self.s.tenants[api_key] = TenantRecord(tenant_id, api_key, secret_hash, False, "now")
        self.s.signature_secrets[api_key] = signature_secret
        return tenant_id

    async def set_signature_secret(self, api_key: str, signature_secret: str) -> bool:
        if api_key not in self.s.tenants:
            return False
        self.s.signature_secrets[api_key] = signature_secret
        return True

    async def by_api_key(self, api_key: str) -> TenantRecord | None:
        return self.s.tenants.get(api_key)

    async def signature_secret(self, api_key: str) -> str | None:
        return self.s.signature_secrets.get(api_key)

    async def api_key_of(self, tenant: int) -> str | None:
        return next((r.api_key for r in self.s.tenants.values() if r.id == tenant), None)

    async def all(self) -> list[TenantRecord]:
        return list(self.s.tenants.values())

    async def revoke(self, api_key: str) -> bool:
        record = self.s.tenants.get(api_key)
        if record is None:
            return False
        self.s.tenants[api_key] = msgspec.structs.replace(record, revoked=True)
        return True

    async def set_revoked(self, api_key: str, revoked: bool) -> bool:
        record = self.s.tenants.get(api_key)
        if record is None:
            return False
        self.s.tenants[api_key] = msgspec.structs.replace(record, revoked=revoked)
        return True

    async def delete(self, api_key: str) -> bool:
        record = self.s.tenants.pop(api_key, None)
        if record is None:
            return False
        self.s.signature_secrets.pop(api_key, None)
        for name in ("applications", "accounts"):
            rows = getattr(self.s, name)
            for key in [k for k, (tenant, _) in rows.items() if tenant == record.id]:
                del rows[key]
        return True

    async def count(self) -> int:
        return len(self.s.tenants)

    async def limits(self, api_key: str) -> TenantLimits | None:
        if api_key not in self.s.tenants:
            return None
        return self.s.limits.get(api_key, TenantLimits())

    async def set_limits(self, api_key: str, limits: TenantLimits) -> bool:
        if api_key not in self.s.tenants:
            return False
        self.s.limits[api_key] = limits
        return True

    async def queued_work(self, api_key: str, now: float) -> Dropped:
        record = self.s.tenants.get(api_key)
        jobs = [j for j in self.s.jobs.values() if record is not None and j.tenant == record.id
                and j.state == "pending" and (j.claimed_until or 0) <= now]  # fmt: skip
        return Dropped(len(jobs), 0)


class FakeAdminTokens:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, name: str, token_hash: str, scopes: tuple[str, ...], at: float) -> bool:
        if name in self.s.admin_tokens:
            return False
        record = AdminTokenRecord(next(self.s.ids), name, scopes, at, False)
        self.s.admin_tokens[name] = (token_hash, record)
        return True

    async def by_hash(self, token_hash: str) -> AdminTokenRecord | None:
        return next((r for h, r in self.s.admin_tokens.values() if h == token_hash), None)

    async def all(self) -> list[AdminTokenRecord]:
        return [r for _, r in self.s.admin_tokens.values()]

    async def revoke(self, name: str) -> bool:
        if name not in self.s.admin_tokens:
            return False
        token_hash, record = self.s.admin_tokens[name]
        self.s.admin_tokens[name] = (token_hash, msgspec.structs.replace(record, revoked=True))
        return True


class FakeAudit:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(
        self, at: float, actor: Actor, action: str, tenant: str | None, outcome: str
    ) -> None:
        entry = AuditEntry(len(self.s.audit) + 1, at, actor.name, action, tenant,
                           actor.request_id, outcome)  # fmt: skip
        self.s.audit.append(entry)

    async def find(
        self,
        actor: str | None,
        tenant: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[AuditEntry]:
        found = [
            e for e in self.s.audit
            if (actor is None or e.actor == actor) and (tenant is None or e.tenant == tenant)
            and (since is None or e.at >= since) and (until is None or e.at < until)
        ]  # fmt: skip
        return found[:limit]


class FakeMessages:
    def __init__(self, state: State) -> None:
        self.state = state

    async def redact(self, tenant: int | None, uuid: str, now: float) -> tuple[str, bool] | None:
        found = self.state.messages.get(uuid)
        if found is None or (tenant is not None and found.tenant != tenant):
            return None
        found.record = msgspec.structs.replace(found.record, content={"redacted": True})
        return found.record.direction, False

    async def add(
        self,
        tenant: int,
        record: MessageRecord,
        *,
        root: str | None,
        webhook_url: str | None,
        workflow: dict[str, str] | None,
    ) -> None:
        assert record.uuid not in self.state.messages
        assert root is None or root in self.state.messages, "a root that was never stored"
        self.state.messages[record.uuid] = FakeMessage(
            next(self.state.ids), tenant, record, root or record.uuid, webhook_url, workflow
        )

    async def add_status(
        self, tenant: int, message_uuid: str, change: StatusChange, *, current: bool = True
    ) -> None:
        found = self.state.messages[message_uuid]
        assert found.tenant == tenant, "a status with another tenant than its message's"
        self.state.statuses.append((message_uuid, change))
        if current:
            found.record = msgspec.structs.replace(found.record, status=change.status)

    async def get_many(self, tenant: int, uuids: list[str]) -> dict[str, StoredMessage]:
        found = {uuid: await self.get(tenant, uuid) for uuid in uuids}
        return {uuid: stored for uuid, stored in found.items() if stored is not None}

    async def get(self, tenant: int | None, uuid: str) -> StoredMessage | None:
        found = self.state.messages.get(uuid)
        if found is None or (tenant is not None and found.tenant != tenant):
            return None
        job = next((j.state for j in self.state.jobs.values() if j.message_uuid == uuid), None)
        return StoredMessage(found.pk, found.root, found.tenant, found.record, found.webhook_url,
                             found.workflow, job)  # fmt: skip

    async def activity(self, tenant: int) -> tuple[int, ...]:
        mine = [m.pk for m in self.state.messages.values() if m.tenant == tenant]
        return (max(mine, default=0), len(self.state.statuses), len(self.state.webhooks))

    async def conversations(self, tenant: int, limit: int) -> list[Conversation]:
        threads: dict[tuple[str, str, str], list[FakeMessage]] = {}
        for m in self.state.messages.values():
            if m.tenant == tenant:
                threads.setdefault((m.record.channel, *m.record.conversation), []).append(m)
        found = [
            Conversation(*key, len(ms), max(ms, key=lambda m: m.pk).record)
            for key, ms in threads.items()
        ]
        found.sort(key=lambda c: -self.state.messages[c.last.uuid].pk)
        return found[:limit]

    async def page(
        self, tenant: int | None, query: MessageFilter
    ) -> tuple[int, list[MessageRecord]]:
        raise NotImplementedError


class FakeWebhooks:
    def __init__(self, state: State) -> None:
        self.state = state

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
        assert message_uuid in self.state.messages and order_uuid in self.state.messages
        self.state.webhooks.append(FakeWebhook(tenant, message_uuid, order_uuid, application_id,
                                               kind, url, body, due_at))  # fmt: skip

    async def delivered(self, result: AttemptResult) -> None:
        raise NotImplementedError  # the dispatcher is tested on the databases

    async def listing(self, where: OutboxFilter, limit: int) -> list[WebhookRecord]:
        raise NotImplementedError

    async def redeliver(self, webhook_id: int, now: float, tenant: int | None = None) -> str | None:
        raise NotImplementedError

    async def redeliver_failed(
        self, where: OutboxFilter, after: int, limit: int, now: float
    ) -> tuple[int, int, int, int]:
        raise NotImplementedError  # the outbox is read and changed on the databases

    async def get(self, tenant: int | None, webhook_id: int) -> WebhookRecord | None:
        raise NotImplementedError  # webhooks are read back on the databases

    async def previous(self, webhook: WebhookRecord) -> WebhookRecord | None:
        raise NotImplementedError

    async def resend(
        self, tenant: int | None, webhook_id: int, body: bytes, now: float
    ) -> tuple[int, str] | None:
        raise NotImplementedError


class FakeJobs:
    """Claims as storage/jobs.py does: due, pending, not leased; a lease that ran out marks the
    try's outcome unknown."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def add(
        self,
        tenant: int,
        message_uuid: str,
        status_url: str | None,
        failover: list[FailoverItem],
        due_at: float,
    ) -> None:
        assert message_uuid in self.state.messages
        pk = next(self.state.ids)
        self.state.jobs[pk] = FakeJob(pk, tenant, message_uuid, status_url, failover, due_at)

    async def claim(self, now: float, lease_until: float, limit: int) -> list[SendJob]:
        due = [
            j for j in self.state.jobs.values()
            if j.state == "pending" and j.due_at <= now
            and (j.claimed_until is None or j.claimed_until <= now)
        ]  # fmt: skip
        claimed = []
        for job in sorted(due, key=lambda j: j.due_at)[:limit]:
            unknown = bool(job.claimed_until)
            job.claimed_until = lease_until
            job.attempts += 1
            job.first_attempt_at = job.first_attempt_at or now
            found = self.state.messages[job.message_uuid]
            record = found.record
            message = OutboundMessage(record.channel, record.message_type, record.to,
                                      record.sender, record.content, record.client_ref,
                                      found.webhook_url)  # fmt: skip
            claimed.append(SendJob(job.pk, job.tenant, message, job.message_uuid, found.root,
                                   record.application_id or "", job.status_url, found.workflow,
                                   job.attempts, job.first_attempt_at, unknown, job.failover,
                                   record.created_at))  # fmt: skip
        return claimed

    async def finish(self, job: int, provider_message_id: str | None) -> None:
        self.state.jobs[job].state = "done"
        self.state.jobs[job].provider_message_id = provider_message_id

    async def retry(self, job: int, due_at: float) -> None:
        self.state.jobs[job].due_at = due_at
        self.state.jobs[job].claimed_until = 0.0

    async def defer(self, job: SendJob, due_at: float) -> None:
        fake = self.state.jobs[job.pk]
        fake.due_at, fake.claimed_until, fake.attempts = due_at, 0.0, job.attempts - 1

    async def cancel(self, message: int) -> None:
        for job in self.state.jobs.values():
            if self.state.messages[job.message_uuid].pk == message:
                job.state = "cancelled"

    async def existing(self, pks: list[int]) -> set[int]:
        return set(pks) & set(self.state.jobs)

    async def backlog(self, now: float) -> tuple[int, float | None]:
        due = [j.due_at for j in self.state.jobs.values() if j.state == "pending"
               and j.due_at <= now]  # fmt: skip
        return len(due), min(due) if due else None


class FakeProviderMessages:
    """As storage/providers.py: ids by (channel, provider id), the first one recorded kept."""

    def __init__(self, state: State) -> None:
        self.state = state

    async def add(self, tenant: int, channel: str, provider_id: str, message_uuid: str,
                  account: str, peer: str, at: float) -> None:  # fmt: skip
        self.state.provider_ids.setdefault(
            (channel, provider_id), (tenant, message_uuid, account, peer, at)
        )

    async def lock(self, channel: str, provider_id: str) -> None:
        """One unit at a time already."""

    async def find(self, tenant: int, channel: str, provider_id: str) -> str | None:
        found = self.state.provider_ids.get((channel, provider_id))
        return found[1] if found is not None and found[0] == tenant else None

    async def find_many(self, tenant: int, channel: str, provider_ids: list[str],
                        ) -> dict[str, str]:  # fmt: skip
        found = {i: await self.find(tenant, channel, i) for i in provider_ids}
        return {i: uuid for i, uuid in found.items() if uuid is not None}

    async def of_message(self, tenant: int, channel: str, message_uuid: str) -> str | None:
        for (kind, provider_id), (owner, uuid, *_) in self.state.provider_ids.items():
            if kind == channel and owner == tenant and uuid == message_uuid:
                return provider_id
        return None

    async def before(self, tenant: int, channel: str, account: str, peer: str,
                     watermark: float) -> list[str]:  # fmt: skip
        found = [
            (at, uuid) for (kind, _), (owner, uuid, acc, to, at) in self.state.provider_ids.items()
            if kind == channel and owner == tenant and acc == account and to == peer
            and at <= watermark and self.state.messages[uuid].record.direction == "outbound"
            and self.state.messages[uuid].record.status in ("submitted", "delivered")
        ]  # fmt: skip
        return [uuid for _, uuid in sorted(found)]

    async def hold(self, tenant: int, channel: str, provider_id: str, change: StatusChange,
                   received_at: float) -> None:  # fmt: skip
        pk = next(self.state.ids)
        self.state.held[pk] = (HeldStatus(pk, tenant, channel, provider_id, change), received_at)

    async def held_ready(self, limit: int) -> list[HeldStatus]:
        ready = [
            held for held, _ in self.state.held.values()
            if (held.channel, held.provider_id) in self.state.provider_ids
        ]  # fmt: skip
        return ready[:limit]

    async def release(self, pks: list[int]) -> None:
        for pk in pks:
            self.state.held.pop(pk, None)

    async def expire_held(self, before: float) -> int:
        old = [pk for pk, (held, received) in self.state.held.items() if received < before
               and (held.channel, held.provider_id) not in self.state.provider_ids]  # fmt: skip
        await self.release(old)
        return len(old)


class FakeUnitOfWork:
    def __init__(self, factory: FakeUnitOfWorkFactory, write: bool) -> None:
        self.factory = factory
        self.write = write
        self.working = copy.deepcopy(factory.committed)
        self.accounts = FakeAccounts(self.working, factory)
        self.applications = FakeApplications(self.working)
        self.tenants = FakeTenants(self.working)
        self.admin_tokens = FakeAdminTokens(self.working)
        self.audit = FakeAudit(self.working)
        self.messages = FakeMessages(self.working)
        self.webhooks = FakeWebhooks(self.working)
        self.jobs = FakeJobs(self.working)
        self.providers = FakeProviderMessages(self.working)

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        pass  # the working copy is simply dropped: a rollback

    async def commit(self) -> None:
        # (Without `write`, the SQL unit commits its message rows in a batch: the same to a
        # use case.) A claim writes its leases: the fake's claim does too, in the working copy.
        self.factory.committed = self.working
        self.factory.commits += 1


class FakeUnitOfWorkFactory:
    def __init__(self) -> None:
        self.committed = State()
        self.commits = 0
        self.sender_reads = 0  # statements reading senders (a claim's are one), committed or not

    def __call__(self, *, write: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, write)


class FakeSecurity:
    """Readable secrets and "tokens" of the form `app:<application id>[:acl-denied]`."""

    dummy_hash = "hash:"

    def __init__(self) -> None:
        self.keys = itertools.count(1)
        self.admitted: list[tuple[int, str]] = []  # (tenant id, API) of every request counted
        self.spent: set[str] = set()  # APIs whose limit every tenant is past

    def admit(self, tenant_id: int, api: str, credentials: Credentials) -> None:
        if api in self.spent:
            raise Throttled(0.5, self.limit(tenant_id, api), 100.0)
        self.admitted.append((tenant_id, api))

    def refuse_early(self, credentials: Credentials, api: str) -> None:
        pass  # (nothing remembered here)

    def limit(self, tenant_id: int, api: str) -> int:
        return 30 if api == "messages" else 100

    def new_api_key(self) -> str:
        return f"key{next(self.keys)}"

    def new_api_secret(self) -> str:
        return f"secret{next(self.keys)}"

    def new_signature_secret(self) -> str:
        return f"signing{next(self.keys)}"

    def hash_secret(self, secret: str) -> str:
        return f"hash:{secret}"

    def verify_secret(self, secret: str, stored_hash: str) -> bool:
        return stored_hash == self.hash_secret(secret)

    def check_signature(
        self, authorization: str | None, body: bytes, secret: str | None
    ) -> SignatureCheck:
        verified = authorization == f"Bearer {secret}"
        return SignatureCheck({}, "", verified, verified)

    def session_binding(self, secret_hash: str) -> str:
        return f"bound:{secret_hash}"

    def new_admin_token(self) -> str:
        return f"admin{next(self.keys)}"

    def hash_token(self, token: str) -> str:
        return f"sha:{token}"

    def verify_session(self, binding: str, secret_hash: str) -> bool:
        return binding == self.session_binding(secret_hash)

    async def new_key_pair(self) -> tuple[str, str]:
        n = next(self.keys)
        return f"private{n}", f"public{n}"

    def claimed_application(self, token: str) -> str | None:
        kind, _, rest = token.partition(":")
        return rest.partition(":")[0] if kind == "app" else None

    def verify_token(self, token: str, path: str, key: ApplicationKey | None) -> ApplicationKey:
        denied = token.count(":") > 1
        if key is None:
            raise NotAuthenticated()
        if denied:
            raise AccessDenied()
        return key
