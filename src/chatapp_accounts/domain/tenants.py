"""Tenants: Vonage-style accounts, an api_key and a secret that is stored only as a hash; and
who a request's credentials say it is."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import limits, rules
from .errors import InvalidInput, NotAuthenticated, TenantNotFound, TenantSuspended
from .models import (
    BasicCredentials,
    BearerCredentials,
    Credentials,
    Dropped,
    NewTenant,
    OperatorCredentials,
    SessionCredentials,
    Tenant,
    TenantLimits,
    TenantRecord,
)
from .ports import Security, UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")
_KEY_ATTEMPTS = 5
API_KEY_MAX = 32  # the column's width


async def create_tenant(uow_factory: UnitOfWorkFactory, security: Security) -> NewTenant:
    api_secret = security.new_api_secret()
    secret_hash = security.hash_secret(api_secret)
    signature_secret = security.new_signature_secret()
    async with uow_factory(write=True) as uow:
        for _ in range(_KEY_ATTEMPTS):
            api_key = security.new_api_key()
            if await uow.tenants.by_api_key(api_key) is None:
                break
        else:  # pragma: no cover - 2**32 keys make this practically unreachable
            raise RuntimeError("could not find a free api_key")
        await uow.tenants.add(api_key, secret_hash, signature_secret)
        await uow.commit()
    return NewTenant(api_key, api_secret, signature_secret)


async def replace_signature_secret(
    uow_factory: UnitOfWorkFactory, security: Security, api_key: str
) -> str:
    """A new webhook signature secret for the tenant (revoked or not), shown once; the old one
    stops working for the webhooks signed from now on."""
    new = security.new_signature_secret()
    await _write(uow_factory, api_key, lambda uow: uow.tenants.set_signature_secret(api_key, new))
    return new


async def list_tenants(uow_factory: UnitOfWorkFactory) -> list[TenantRecord]:
    async with uow_factory() as uow:
        return await uow.tenants.all()


async def show_tenant(uow_factory: UnitOfWorkFactory, api_key: str) -> TenantRecord:
    return await _read(uow_factory, api_key, lambda uow: uow.tenants.by_api_key(api_key))


async def revoke_tenant(uow_factory: UnitOfWorkFactory, api_key: str) -> None:
    """Suspend the tenant: its credentials (Basic, its applications' JWTs, inbox sessions)
    answer 401 on every API from now on, in every process. Nothing of it is deleted."""
    await _set_revoked(uow_factory, api_key, True)


suspend_tenant = revoke_tenant


async def resume_tenant(uow_factory: UnitOfWorkFactory, api_key: str) -> None:
    """Undo a suspension (a revoke): the same credentials work again."""
    await _set_revoked(uow_factory, api_key, False)


async def _set_revoked(uow_factory: UnitOfWorkFactory, api_key: str, revoked: bool) -> None:
    await _write(uow_factory, api_key, lambda uow: uow.tenants.set_revoked(api_key, revoked))


async def delete_tenant(uow_factory: UnitOfWorkFactory, api_key: str) -> Dropped:
    """The tenant and all its data (applications, accounts, messages, webhooks...: the
    schema's ON DELETE CASCADE). The audit log keeps what was done to it. Its queued work goes
    with it: what was dropped (the sends and webhooks in flight are dropped, and counted, by
    the sender and the dispatcher that hold them when they find them gone)."""
    dropped = Dropped(0, 0)

    async def delete(uow: UnitOfWork) -> bool:
        nonlocal dropped
        dropped = await uow.tenants.queued_work(api_key, time.time())
        return await uow.tenants.delete(api_key)

    await _write(uow_factory, api_key, delete)
    return dropped


async def show_limits(uow_factory: UnitOfWorkFactory, api_key: str) -> TenantLimits:
    """A tenant's own limits (None where the settings' default holds, docs/limits.md)."""
    return await _read(uow_factory, api_key, lambda uow: uow.tenants.limits(api_key))


async def set_limits(
    uow_factory: UnitOfWorkFactory, api_key: str, new: TenantLimits
) -> TenantLimits:
    """Replace a tenant's own limits (None: back to the default). Every process counts against
    them from the next second on."""
    bad = limits.refusals(new)
    if bad:
        raise InvalidInput(bad)
    await _write(uow_factory, api_key, lambda uow: uow.tenants.set_limits(api_key, new))
    return new


async def _read(
    uow_factory: UnitOfWorkFactory,
    api_key: str,
    read: Callable[[UnitOfWork], Awaitable[T | None]],
) -> T:
    """What `read` finds of the tenant `api_key`: TenantNotFound for nothing."""
    if not rules.could_be_id(api_key, API_KEY_MAX):
        raise TenantNotFound(api_key)
    async with uow_factory() as uow:
        found = await read(uow)
    if found is None:
        raise TenantNotFound(api_key)
    return found


async def _write(
    uow_factory: UnitOfWorkFactory, api_key: str, write: Callable[[UnitOfWork], Awaitable[bool]]
) -> None:
    """`write` the tenant `api_key`, in a transaction of its own: TenantNotFound when it
    changed nothing (no such tenant)."""
    if not rules.could_be_id(api_key, API_KEY_MAX):
        raise TenantNotFound(api_key)
    async with uow_factory(write=True) as uow:
        if not await write(uow):
            raise TenantNotFound(api_key)
        await uow.commit()


async def sign_in(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: BasicCredentials
) -> SessionCredentials:
    """The web inbox's sign-in: the tenant's api_key and secret, checked as Basic credentials
    are, give a session bound to the secret's hash (revoking the tenant ends it)."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        record = await uow.tenants.by_api_key(tenant.api_key)
    if record is None:  # pragma: no cover - it was just read
        raise NotAuthenticated()
    return SessionCredentials(record.api_key, security.session_binding(record.secret_hash))


async def count_tenants(uow_factory: UnitOfWorkFactory) -> int:
    async with uow_factory() as uow:
        return await uow.tenants.count()


async def operator_tenant(uow: UnitOfWork, api_key: str) -> Tenant:
    """The tenant an operator acts for (the CLI, the admin API): TenantNotFound for an unknown
    api_key, TenantSuspended for a suspended tenant (resume it first)."""
    record = (
        await uow.tenants.by_api_key(api_key) if rules.could_be_id(api_key, API_KEY_MAX) else None
    )
    if record is None:
        raise TenantNotFound(api_key)
    if record.revoked:
        raise TenantSuspended(api_key)
    return Tenant(record.id, record.api_key)


async def authenticate(uow: UnitOfWork, security: Security, credentials: Credentials) -> Tenant:
    """The tenant a request acts as, read in the use case's own unit of work; NotAuthenticated
    (401) or AccessDenied (403, a JWT whose `acl` does not cover the path) otherwise.
    - Basic: the api_key's tenant, if the secret is its own and it is not revoked. An unknown
      api_key costs the same hash and comparison as a known one (a dummy hash).
    - Bearer: the owner of the application whose RS256 JWT it is, checked with the
      application's current key.
    - An operator's (OperatorCredentials, the admin API): the tenant it acts for
      (`operator_tenant`), under no limit.
    Then the request counts against the tenant's limit on the API its path is on (Throttled,
    429, past it; docs/limits.md)."""
    if isinstance(credentials, OperatorCredentials):
        return await operator_tenant(uow, credentials.api_key)
    api = limits.api_of(credentials.path)
    if api is not None:
        security.refuse_early(credentials, api)  # (known credentials, their second spent)
    if isinstance(credentials, SessionCredentials):
        record = None
        if rules.could_be_id(credentials.api_key, API_KEY_MAX):
            record = await uow.tenants.by_api_key(credentials.api_key)
        if record is None or record.revoked:
            raise NotAuthenticated()
        if not security.verify_session(credentials.binding, record.secret_hash):
            raise NotAuthenticated()
        tenant = Tenant(record.id, record.api_key)
    elif isinstance(credentials, BasicCredentials):
        api_key = credentials.api_key
        record = None
        if rules.could_be_id(api_key, API_KEY_MAX):
            record = await uow.tenants.by_api_key(api_key)
        stored = record.secret_hash if record is not None else security.dummy_hash
        matches = security.verify_secret(credentials.api_secret, stored)
        if record is None or record.revoked or not matches:
            raise NotAuthenticated()
        tenant = Tenant(record.id, record.api_key)
    else:
        tenant = await _application_owner(uow, security, credentials)
    if api is not None:
        security.admit(tenant.id, api, credentials)  # Throttled (429) past the tenant's limit
    return tenant


async def _application_owner(
    uow: UnitOfWork, security: Security, credentials: BearerCredentials
) -> Tenant:
    key = None
    application_id = security.claimed_application(credentials.token)
    # An id no application has is not looked up (nor could the database be asked for it).
    if application_id is not None and rules.could_be_id(application_id):
        key = await uow.applications.signing_key(application_id)
    key = security.verify_token(credentials.token, credentials.path, key)
    return Tenant(key.tenant_id, key.api_key, application_id)
