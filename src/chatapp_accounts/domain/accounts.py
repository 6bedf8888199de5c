"""Use cases of the External Accounts API. Each takes plain values and a unit-of-work factory,
opens one transaction, and commits only when every rule holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from ..security.jwt import SigningKey
from . import rules, tenants
from .errors import (
    AccountAlreadyRegistered,
    AccountNotFound,
    CannotLink,
    CannotUnlink,
    InvalidInput,
    LinkConflict,
    TenantNotFound,
    UnlinkConflict,
)
from .models import Account, AccountPage, Provider, Tenant
from .ports import AccountReads, UnitOfWork, UnitOfWorkFactory


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def _require_linkable(uow: UnitOfWork, tenant: Tenant, application_id: str) -> None:
    if not rules.could_be_id(application_id):
        raise CannotLink()
    application = uow.applications.get(tenant.id, application_id)
    if application is None or not application.has_messages:
        raise CannotLink()


def _add(uow: UnitOfWork, tenant: Tenant, account: Account) -> None:
    owner = uow.accounts.owner(account.provider, account.external_id)
    if owner is not None:
        whose = "your account" if owner == tenant.id else "another account"
        raise AccountAlreadyRegistered(
            f"The {account.provider.value} account '{account.external_id}' "
            f"is already registered to {whose}"
        )
    uow.accounts.add(tenant.id, account)  # the unique constraint settles any race


def create_messenger_account(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    *,
    external_id: str,
    access_token: str,
    name: str | None = None,
    application_id: str | None = None,
) -> Account:
    account = Account(
        provider=Provider.MESSENGER,
        external_id=external_id,
        api_key=tenant.api_key,
        name=name,
        access_token=access_token,
        application_id=application_id,
    )
    with uow_factory(write=True) as uow:
        if application_id is not None:
            _require_linkable(uow, tenant, application_id)
        _add(uow, tenant, account)
        uow.commit()
    return account


def get_account(
    uow_factory: UnitOfWorkFactory, tenant: Tenant, provider: Provider, external_id: str
) -> Account:
    if not rules.could_be_external_id(external_id):
        raise AccountNotFound()
    with uow_factory() as uow:
        account = uow.accounts.get(tenant.id, provider, external_id)
    if account is None:
        raise AccountNotFound()
    return account


async def get_account_with_basic_auth(
    reads: AccountReads,
    api_key: str,
    api_secret: str,
    provider: Provider,
    external_id: str,
) -> Account:
    """Basic auth and the read of one account, in one query: the hot path of every
    message-routing lookup. Same answers as authenticate() then get_account(): 401 first."""
    found = None
    if rules.could_be_id(api_key, tenants.API_KEY_MAX):
        lookup_id = external_id if rules.could_be_external_id(external_id) else ""
        found = await reads.with_credentials(api_key, provider, lookup_id)
    tenants.check_secret(found[0] if found else None, api_secret)
    if found is None or found[1] is None:
        raise AccountNotFound()
    return found[1]


async def get_account_with_token(
    reads: AccountReads,
    application_id: str | None,
    verify: Callable[[Callable[[str], SigningKey | None]], SigningKey],
    provider: Provider,
    external_id: str,
) -> Account:
    """Bearer auth and the read of one account in one query. `application_id` is the one the
    token claims; `verify` checks the token with the key this read fetches (the application's
    current key, with its owner's account): it proves the claim, or the answer is 401."""
    lookup_id = external_id if rules.could_be_external_id(external_id) else ""
    found = None
    if application_id is not None and rules.could_be_id(application_id):
        found = await reads.with_application_key(application_id, provider, lookup_id)

    def key_of(requested: str) -> SigningKey | None:
        if found is None or requested != application_id:
            return None
        return SigningKey(*found[0])

    verify(key_of)
    if found is None or found[1] is None:
        raise AccountNotFound()
    return found[1]


def update_messenger_account(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    external_id: str,
    *,
    name: str | _Unset | None = UNSET,
    access_token: str | _Unset = UNSET,
    application_id: str | _Unset | None = UNSET,
) -> Account:
    """Change what is given; `application_id=None` unlinks, a new id replaces the link."""
    provider = Provider.MESSENGER
    if not rules.could_be_external_id(external_id):
        raise AccountNotFound()
    with uow_factory(write=True) as uow:
        if uow.accounts.get(tenant.id, provider, external_id) is None:
            raise AccountNotFound()
        if isinstance(application_id, str):
            _require_linkable(uow, tenant, application_id)
        if not isinstance(name, _Unset) or not isinstance(access_token, _Unset):
            uow.accounts.update(
                tenant.id,
                provider,
                external_id,
                name=None if isinstance(name, _Unset) else name,
                access_token=None if isinstance(access_token, _Unset) else access_token,
                set_name=not isinstance(name, _Unset),
                set_access_token=not isinstance(access_token, _Unset),
            )
        if not isinstance(application_id, _Unset):
            if not uow.accounts.set_application(tenant.id, provider, external_id, application_id):
                raise CannotLink()
        account = uow.accounts.get(tenant.id, provider, external_id)
        uow.commit()
    assert account is not None
    return account


def delete_messenger_account(
    uow_factory: UnitOfWorkFactory, tenant: Tenant, external_id: str
) -> None:
    if not rules.could_be_external_id(external_id):
        raise AccountNotFound()
    with uow_factory(write=True) as uow:
        if not uow.accounts.delete(tenant.id, Provider.MESSENGER, external_id):
            raise AccountNotFound()
        uow.commit()


async def list_accounts(
    reads: AccountReads,
    tenant: Tenant,
    *,
    provider: Provider | None,
    page_number: int,
    page_size: int,
) -> AccountPage:
    total = await reads.count(tenant.id, provider)
    return await _read_page(reads, tenant, provider, page_number, page_size, total)


async def list_accounts_with_basic_auth(
    reads: AccountReads,
    api_key: str,
    api_secret: str,
    *,
    provider: Provider | None,
    page_number: int,
    page_size: int,
) -> AccountPage:
    """Basic auth and the count in one query, then the page: the list's reads with one
    statement fewer. Same answers as authenticate() then list_accounts()."""
    found = None
    if rules.could_be_id(api_key, tenants.API_KEY_MAX):
        found = await reads.count_with_credentials(api_key, provider)
    tenant = tenants.check_secret(found[0] if found else None, api_secret)
    assert found is not None
    return await _read_page(reads, tenant, provider, page_number, page_size, found[1])


async def _read_page(
    reads: AccountReads,
    tenant: Tenant,
    provider: Provider | None,
    page_number: int,
    page_size: int,
    total: int,
) -> AccountPage:
    offset = (page_number - 1) * page_size
    items = await reads.page(tenant, provider, offset, page_size, total) if offset < total else []
    return AccountPage(items, page_number, page_size, total)


def link_application(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    provider: Provider | None,
    external_id: str,
    application_id: str,
) -> Account:
    """Link one application. The same one again changes nothing; another one is a conflict."""
    if provider is None or not rules.could_be_external_id(external_id):
        raise CannotLink()  # names an account that cannot exist
    with uow_factory(write=True) as uow:
        account = uow.accounts.get(tenant.id, provider, external_id)
        if account is None:
            raise CannotLink()
        _require_linkable(uow, tenant, application_id)
        if not uow.accounts.link(tenant.id, provider, external_id, application_id):
            raise LinkConflict()
        uow.commit()
    return msgspec.structs.replace(account, application_id=application_id)


def unlink_application(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    provider: Provider | None,
    external_id: str,
    application_id: str,
) -> None:
    if provider is None or not rules.could_be_external_id(external_id):
        raise CannotUnlink()
    with uow_factory(write=True) as uow:
        if uow.accounts.get(tenant.id, provider, external_id) is None:
            raise CannotUnlink()
        if not rules.could_be_id(application_id):
            raise UnlinkConflict()
        if not uow.accounts.unlink(tenant.id, provider, external_id, application_id):
            raise UnlinkConflict()
        uow.commit()


def provision_account(
    uow_factory: UnitOfWorkFactory,
    *,
    api_key: str,
    provider: Provider,
    external_id: str,
    name: str | None = None,
    access_token: str | None = None,
) -> Account:
    """The operator's way to register any provider's account for a tenant (the CLI)."""
    if provider is Provider.MESSENGER and not access_token:
        raise InvalidInput.one("access_token", "a messenger account needs an access token")
    if provider is not Provider.MESSENGER and access_token is not None:
        raise InvalidInput.one("access_token", f"a {provider.value} account has no access token")
    with uow_factory(write=True) as uow:
        record = uow.tenants.by_api_key(api_key)
        if record is None or record.revoked:
            raise TenantNotFound(api_key)
        tenant = Tenant(record.id, record.api_key)
        account = Account(provider, external_id, tenant.api_key, name, access_token)
        _add(uow, tenant, account)
        uow.commit()
    return account
