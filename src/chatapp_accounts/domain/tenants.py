"""Tenants: Vonage-style accounts, an api_key and a secret that is stored only as a hash."""

from __future__ import annotations

from ..security import secrets
from ..security.jwt import SigningKey
from . import rules
from .errors import NotAuthenticated, TenantNotFound
from .models import NewTenant, Tenant, TenantRecord
from .ports import UnitOfWorkFactory

_KEY_ATTEMPTS = 5
API_KEY_MAX = 32  # the column's width


def create_tenant(uow_factory: UnitOfWorkFactory) -> NewTenant:
    api_secret = secrets.new_api_secret()
    secret_hash = secrets.hash_secret(api_secret)
    with uow_factory(write=True) as uow:
        for _ in range(_KEY_ATTEMPTS):
            api_key = secrets.new_api_key()
            if uow.tenants.by_api_key(api_key) is None:
                break
        else:  # pragma: no cover - 2**32 keys make this practically unreachable
            raise RuntimeError("could not find a free api_key")
        uow.tenants.add(api_key, secret_hash)
        uow.commit()
    return NewTenant(api_key, api_secret)


def list_tenants(uow_factory: UnitOfWorkFactory) -> list[TenantRecord]:
    with uow_factory() as uow:
        return uow.tenants.all()


def revoke_tenant(uow_factory: UnitOfWorkFactory, api_key: str) -> None:
    if not rules.could_be_id(api_key, API_KEY_MAX):
        raise TenantNotFound(api_key)
    with uow_factory(write=True) as uow:
        if not uow.tenants.revoke(api_key):
            raise TenantNotFound(api_key)
        uow.commit()


def count_tenants(uow_factory: UnitOfWorkFactory) -> int:
    with uow_factory() as uow:
        return uow.tenants.count()


def signing_key(uow_factory: UnitOfWorkFactory, application_id: str) -> SigningKey | None:
    """The key that verifies an application's JWTs, and the tenant the tokens act as."""
    if not rules.could_be_id(application_id):
        return None
    with uow_factory() as uow:
        found = uow.applications.signing_key(application_id)
    return SigningKey(*found) if found is not None else None


def check_secret(record: TenantRecord | None, api_secret: str) -> Tenant:
    """The tenant, if the secret is its own and it is not revoked. The same work whether or not
    the api_key exists: an unknown key is compared against a dummy hash."""
    stored = record.secret_hash if record is not None else secrets.DUMMY_HASH
    matches = secrets.verify_secret(api_secret, stored)
    if record is None or record.revoked or not matches:
        raise NotAuthenticated()
    return Tenant(record.id, record.api_key)


def authenticate(uow_factory: UnitOfWorkFactory, api_key: str, api_secret: str) -> Tenant:
    """Basic auth."""
    record = None
    if rules.could_be_id(api_key, API_KEY_MAX):
        with uow_factory() as uow:
            record = uow.tenants.by_api_key(api_key)
    return check_secret(record, api_secret)
