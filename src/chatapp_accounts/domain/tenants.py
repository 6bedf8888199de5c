"""Tenants: Vonage-style accounts, an api_key and a secret that is stored only as a hash; and
who a request's credentials say it is."""

from __future__ import annotations

from . import rules
from .errors import NotAuthenticated, TenantNotFound
from .models import ApplicationKey, BasicCredentials, Credentials, NewTenant, Tenant, TenantRecord
from .ports import Security, UnitOfWork, UnitOfWorkFactory

_KEY_ATTEMPTS = 5
API_KEY_MAX = 32  # the column's width


def create_tenant(uow_factory: UnitOfWorkFactory, security: Security) -> NewTenant:
    api_secret = security.new_api_secret()
    secret_hash = security.hash_secret(api_secret)
    with uow_factory(write=True) as uow:
        for _ in range(_KEY_ATTEMPTS):
            api_key = security.new_api_key()
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


def authenticate(uow: UnitOfWork, security: Security, credentials: Credentials) -> Tenant:
    """The tenant a request acts as, read in the use case's own unit of work; NotAuthenticated
    (401) or AccessDenied (403, a JWT whose `acl` does not cover the path) otherwise.
    - Basic: the api_key's tenant, if the secret is its own and it is not revoked. An unknown
      api_key costs the same hash and comparison as a known one (a dummy hash).
    - Bearer: the owner of the application whose RS256 JWT it is, checked with the
      application's current key."""
    if isinstance(credentials, BasicCredentials):
        api_key = credentials.api_key
        record = (
            uow.tenants.by_api_key(api_key) if rules.could_be_id(api_key, API_KEY_MAX) else None
        )
        stored = record.secret_hash if record is not None else security.dummy_hash
        matches = security.verify_secret(credentials.api_secret, stored)
        if record is None or record.revoked or not matches:
            raise NotAuthenticated()
        return Tenant(record.id, record.api_key)

    def key_of(application_id: str) -> ApplicationKey | None:
        if not rules.could_be_id(application_id):
            return None  # no application has it (nor can the database be asked for it)
        return uow.applications.signing_key(application_id)

    key = security.verify_token(credentials.token, credentials.path, key_of)
    return Tenant(key.tenant_id, key.api_key)
