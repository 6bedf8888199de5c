"""The operators' use cases (docs/operations.md): admin tokens, and the audit log of every
change an operator makes, through the admin API or the command line (one path, two doors:
both call these and the tenants' and accounts' use cases, wrapped in `audited`)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from . import rules
from .errors import (
    AccessDenied,
    AdminTokenExists,
    AdminTokenNotFound,
    DomainError,
    InvalidInput,
    InvalidParam,
    NotAuthenticated,
)
from .models import Actor, AdminTokenRecord, AuditEntry, NewAdminToken
from .ports import Security, UnitOfWorkFactory

T = TypeVar("T")

READ = "read"
TENANTS_WRITE = "tenants:write"
ACCOUNTS_WRITE = "accounts:write"
SCOPES = (READ, TENANTS_WRITE, ACCOUNTS_WRITE)
NAME_MAX = 64  # the column's width
TOKEN_MAX = 256  # longer is not one of ours: not hashed nor looked up
AUDIT_LIMIT_MAX = 1000


_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _check_name(name: str) -> None:
    if _NAME.fullmatch(name) is None or name == "cli":
        raise InvalidInput.one(
            "name", f"1 to {NAME_MAX} letters, digits, '-', '_' or '.'; not 'cli'"
        )


async def create_admin_token(
    uow_factory: UnitOfWorkFactory, security: Security, name: str, scopes: list[str]
) -> NewAdminToken:
    """A new token, shown once; stored as its SHA-256 only."""
    _check_name(name)
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        raise InvalidInput.one("scope", f"one or more of {', '.join(SCOPES)}")
    kept = tuple(s for s in SCOPES if s in scopes)
    token = security.new_admin_token()
    async with uow_factory(write=True) as uow:
        if not await uow.admin_tokens.add(name, security.hash_token(token), kept, time.time()):
            raise AdminTokenExists(name)
        await uow.commit()
    return NewAdminToken(name, token, kept)


async def list_admin_tokens(uow_factory: UnitOfWorkFactory) -> list[AdminTokenRecord]:
    async with uow_factory() as uow:
        return await uow.admin_tokens.all()


async def revoke_admin_token(uow_factory: UnitOfWorkFactory, name: str) -> None:
    if not rules.could_be_id(name, NAME_MAX):
        raise AdminTokenNotFound(name)
    async with uow_factory(write=True) as uow:
        if not await uow.admin_tokens.revoke(name):
            raise AdminTokenNotFound(name)
        await uow.commit()


async def authorize(
    uow_factory: UnitOfWorkFactory, security: Security, token: str | None, scope: str
) -> AdminTokenRecord:
    """The admin token a request carries, if it is one of ours, not revoked, and holds `scope`:
    NotAuthenticated (missing, unknown, revoked) or AccessDenied (no such scope) otherwise."""
    if not token or len(token) > TOKEN_MAX:
        raise NotAuthenticated()
    async with uow_factory() as uow:
        record = await uow.admin_tokens.by_hash(security.hash_token(token))
    if record is None or record.revoked:
        raise NotAuthenticated()
    if scope not in record.scopes:
        raise AccessDenied(f"This token lacks the scope '{scope}'")
    return record


def outcome_of(exc: BaseException) -> str:
    """What the audit log says of a failure: the error's kind and its detail (details never
    hold a secret), or its kind alone for an unexpected one."""
    name = type(exc).__name__
    if isinstance(exc, InvalidInput):
        return f"error: {name}: " + "; ".join(f"{p.name}: {p.reason}" for p in exc.params)
    if isinstance(exc, DomainError):
        return f"error: {name}: {exc.detail}" if exc.detail else f"error: {name}"
    return f"error: {name}"


async def audited(
    uow_factory: UnitOfWorkFactory,
    actor: Actor,
    action: str,
    tenant: str | None,
    operation: Callable[[], Awaitable[T]],
    tenant_of: Callable[[T], str | None] | None = None,
    detail_of: Callable[[T], str] | None = None,
) -> T:
    """`await operation()`, and a line in the audit log of who did it, to which tenant (its
    api_key; `tenant_of(result)` for one the operation found or made), when and how it went
    (`ok`, or `ok: <detail_of(result)>`)."""
    try:
        result = await operation()
    except Exception as exc:
        await record(uow_factory, actor, action, tenant, outcome_of(exc))
        raise
    if tenant_of is not None:
        tenant = tenant_of(result)
    outcome = "ok" if detail_of is None else f"ok: {detail_of(result)}"
    await record(uow_factory, actor, action, tenant, outcome)
    return result


async def record(
    uow_factory: UnitOfWorkFactory, actor: Actor, action: str, tenant: str | None, outcome: str
) -> None:
    if tenant is not None and not rules.could_be_id(tenant, 32):
        tenant = None  # not an api_key: said in the outcome, never stored as one
    async with uow_factory(write=True) as uow:
        await uow.audit.add(time.time(), actor, action, tenant, outcome[:1000])
        await uow.commit()


def parse_time(value: str, name: str) -> float:
    """An ISO 8601 time (a date alone is its midnight; no zone: UTC), as seconds since the
    epoch; InvalidInput otherwise."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput([InvalidParam(name, "an ISO 8601 time")]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def check_filters(
    tenant: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    bad: list[InvalidParam],
) -> tuple[float | None, float | None]:
    """The filters the operators' listings share (the audit log, the webhook outbox): a
    tenant's api_key, a time range (ISO 8601; since inclusive, until exclusive) and a limit
    (1 to AUDIT_LIMIT_MAX). The range as seconds since the epoch; what is wrong added to
    `bad`, each by its parameter's name."""
    bounds: list[float | None] = []
    for name, value in (("since", since), ("until", until)):
        try:
            bounds.append(parse_time(value, name) if value is not None else None)
        except InvalidInput as exc:
            bad.extend(exc.params)
            bounds.append(None)
    if tenant is not None and not 0 < len(tenant) <= 32:
        bad.append(InvalidParam("tenant", "an api_key"))
    if limit is not None and not 1 <= limit <= AUDIT_LIMIT_MAX:
        bad.append(InvalidParam("limit", f"1 to {AUDIT_LIMIT_MAX}"))
    return bounds[0], bounds[1]


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


async def audit_log(
    uow_factory: UnitOfWorkFactory,
    *,
    actor: str | None = None,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = AUDIT_LIMIT_MAX,
) -> list[AuditEntry]:
    """The audit log, oldest first, filtered by actor, tenant (api_key) and time (ISO 8601)."""
    bad: list[InvalidParam] = []
    start, end = check_filters(tenant, since, until, limit, bad)
    if actor is not None and not 0 < len(actor) <= NAME_MAX:
        bad.append(InvalidParam("actor", f"1 to {NAME_MAX} characters"))
    if bad:
        raise InvalidInput(bad)
    async with uow_factory() as uow:
        return await uow.audit.find(actor, tenant, start, end, limit)
