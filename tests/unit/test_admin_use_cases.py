"""The operators' use cases (domain/admin.py, domain/tenants.py) on the fakes: tokens and their
scopes, the audit wrapper's lines (ok and failed, never a secret), the log's filters and refused
queries, suspend/resume/delete."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from chatapp_accounts.domain import admin, tenants
from chatapp_accounts.domain.errors import (
    AccessDenied,
    AdminTokenExists,
    AdminTokenNotFound,
    InvalidInput,
    NotAuthenticated,
    TenantNotFound,
)
from chatapp_accounts.domain.models import CLI, Actor, BasicCredentials

from .fakes import FakeSecurity, FakeUnitOfWorkFactory

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def test_a_token_is_stored_hashed_and_holds_its_scopes() -> None:
    uow, security = FakeUnitOfWorkFactory(), FakeSecurity()
    made = run(admin.create_admin_token(uow, security, "ops", ["tenants:write", "read"]))
    assert made.scopes == ("read", "tenants:write")
    stored = uow.committed.admin_tokens["ops"]
    assert stored[0] == security.hash_token(made.token) != made.token
    assert run(admin.authorize(uow, security, made.token, "read")).name == "ops"
    with pytest.raises(AccessDenied):
        run(admin.authorize(uow, security, made.token, "accounts:write"))
    for bad in (None, "", "nope", "x" * 300):
        with pytest.raises(NotAuthenticated):
            run(admin.authorize(uow, security, bad, "read"))
    with pytest.raises(AdminTokenExists):
        run(admin.create_admin_token(uow, security, "ops", ["read"]))
    run(admin.revoke_admin_token(uow, "ops"))
    with pytest.raises(NotAuthenticated):
        run(admin.authorize(uow, security, made.token, "read"))
    with pytest.raises(AdminTokenNotFound):
        run(admin.revoke_admin_token(uow, "nobody"))


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("", ["read"]), ("cli", ["read"]), ("a b", ["read"]), ("x" * 65, ["read"]), ("ok", []),
     ("ok", ["root"])],
)  # fmt: skip
def test_a_bad_token_request_changes_nothing(name: str, scopes: list[str]) -> None:
    uow = FakeUnitOfWorkFactory()
    with pytest.raises(InvalidInput):
        run(admin.create_admin_token(uow, FakeSecurity(), name, scopes))
    assert uow.committed.admin_tokens == {}


def test_audited_writes_one_line_of_each_change_ok_or_not() -> None:
    uow, security = FakeUnitOfWorkFactory(), FakeSecurity()
    who = Actor("ops", "req-1")
    new = run(admin.audited(uow, who, "tenants.create", None,
                            lambda: tenants.create_tenant(uow, security),
                            lambda t: t.api_key))  # fmt: skip
    with pytest.raises(TenantNotFound):
        run(admin.audited(uow, CLI, "tenants.suspend", "gone",
                          lambda: tenants.suspend_tenant(uow, "gone")))  # fmt: skip
    lines = [(e.actor, e.action, e.tenant, e.request_id, e.outcome) for e in uow.committed.audit]
    assert lines == [
        ("ops", "tenants.create", new.api_key, "req-1", "ok"),
        ("cli", "tenants.suspend", "gone", None, "error: TenantNotFound: no tenant with api_key 'gone'"),
    ]  # fmt: skip
    assert new.api_secret not in repr(uow.committed.audit)
    assert run(admin.audit_log(uow, actor="cli"))[0].action == "tenants.suspend"
    assert run(admin.audit_log(uow, tenant=new.api_key))[0].actor == "ops"
    assert run(admin.audit_log(uow, since="2999-01-01")) == []
    assert len(run(admin.audit_log(uow, until="2999-01-01T00:00:00Z", limit=1))) == 1
    with pytest.raises(InvalidInput) as refused:
        run(admin.audit_log(uow, since="never", until="x", limit=0))
    assert [p.name for p in refused.value.params] == ["since", "until", "limit"]


def test_suspend_resume_and_delete() -> None:
    uow, security = FakeUnitOfWorkFactory(), FakeSecurity()
    new = run(tenants.create_tenant(uow, security))
    creds = BasicCredentials(new.api_key, new.api_secret)

    async def sign_in() -> None:
        async with uow() as unit:
            await tenants.authenticate(unit, security, creds)

    run(tenants.suspend_tenant(uow, new.api_key))
    assert run(tenants.show_tenant(uow, new.api_key)).revoked
    with pytest.raises(NotAuthenticated):
        run(sign_in())
    run(tenants.resume_tenant(uow, new.api_key))
    run(sign_in())
    run(tenants.delete_tenant(uow, new.api_key))
    for case in (tenants.show_tenant, tenants.delete_tenant, tenants.resume_tenant):
        with pytest.raises(TenantNotFound):
            run(case(uow, new.api_key))
