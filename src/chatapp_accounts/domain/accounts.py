"""Use cases of the External Accounts API. Each takes plain values (the caller's credentials
among them) and a unit-of-work factory, opens one transaction, finds out who is calling, and
commits only when every rule holds. The input of an operation is checked after the caller is
known (`inputs`, a function that returns it or raises InvalidInput), so a caller who may not
call hears 401 before anything about the request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from . import rules
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
from .models import Account, AccountPage, Credentials, PageRequest, Provider, Tenant
from .ports import Security, UnitOfWork, UnitOfWorkFactory
from .tenants import authenticate

# The providers whose accounts have a GET of their own (the spec's paths); every provider's
# accounts are listed, linked and unlinked.
READABLE: Final = (Provider.MESSENGER, Provider.VIBER_SERVICE_MSG, Provider.WHATSAPP)


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


class MessengerInput(msgspec.Struct, frozen=True):
    """A create (every field) or a patch (UNSET: leave as is; application_id None: unlink)."""

    external_id: str | _Unset = UNSET
    access_token: str | _Unset = UNSET
    name: str | _Unset | None = UNSET
    application_id: str | _Unset | None = UNSET


async def _require_linkable(uow: UnitOfWork, tenant: Tenant, application_id: str) -> None:
    if not rules.could_be_id(application_id):
        raise CannotLink()
    application = await uow.applications.get(tenant.id, application_id)
    if application is None or not application.has_messages:
        raise CannotLink()


async def _add(uow: UnitOfWork, tenant: Tenant, account: Account) -> None:
    """Registered, or AccountAlreadyRegistered: the unique constraint decides, even between
    racing creates; then the owner is read for the message."""
    if await uow.accounts.add(tenant.id, account):
        return
    message = f"The {account.provider.value} account '{account.external_id}' is already registered"
    owner = await uow.accounts.owner(account.provider, account.external_id)
    if owner is not None:  # (None: it was removed meanwhile)
        message += " to your account" if owner == tenant.id else " to another account"
    raise AccountAlreadyRegistered(message)


async def _get(
    uow: UnitOfWork, tenant: Tenant, provider: Provider | None, external_id: str
) -> Account:
    """The tenant's account, or AccountNotFound (an id no account can have is not looked up)."""
    account = None
    if provider is not None and rules.could_be_external_id(external_id):
        account = await uow.accounts.get(tenant.id, provider, external_id)
    if account is None:
        raise AccountNotFound()
    return account


async def create_messenger_account(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], MessengerInput],
) -> Account:
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        data = inputs()
        assert isinstance(data.external_id, str) and isinstance(data.access_token, str)
        application_id = data.application_id if isinstance(data.application_id, str) else None
        account = Account(
            provider=Provider.MESSENGER,
            external_id=data.external_id,
            api_key=tenant.api_key,
            name=data.name if isinstance(data.name, str) else None,
            access_token=data.access_token,
            application_id=application_id,
        )
        if application_id is not None:
            await _require_linkable(uow, tenant, application_id)
        await _add(uow, tenant, account)
        await uow.commit()
    return account


async def get_account(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    provider: Provider,
    external_id: str,
) -> Account:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        return await _get(uow, tenant, provider, external_id)


async def update_messenger_account(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    external_id: str,
    inputs: Callable[[], MessengerInput],
) -> Account:
    """Change what is given; `application_id=None` unlinks, a new id replaces the link."""
    provider = Provider.MESSENGER
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        data = inputs()
        await _get(uow, tenant, provider, external_id)
        if isinstance(data.application_id, str):
            await _require_linkable(uow, tenant, data.application_id)
        set_name = not isinstance(data.name, _Unset)
        set_token = not isinstance(data.access_token, _Unset)
        if set_name or set_token:
            await uow.accounts.update(
                tenant.id,
                provider,
                external_id,
                name=data.name if isinstance(data.name, str) else None,
                access_token=data.access_token if isinstance(data.access_token, str) else None,
                set_name=set_name,
                set_access_token=set_token,
            )
        if not isinstance(data.application_id, _Unset):
            linked = await uow.accounts.set_application(
                tenant.id, provider, external_id, data.application_id
            )
            if not linked:
                raise CannotLink()
        account = await _get(uow, tenant, provider, external_id)
        await uow.commit()
    return account


async def delete_messenger_account(
    uow_factory: UnitOfWorkFactory, security: Security, credentials: Credentials, external_id: str
) -> None:
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        deleted = rules.could_be_external_id(external_id) and await uow.accounts.delete(
            tenant.id, Provider.MESSENGER, external_id
        )
        if not deleted:
            raise AccountNotFound()
        await uow.commit()


async def list_accounts(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], PageRequest],
) -> AccountPage:
    """A page of the tenant's accounts in creation order; a page past the end is empty. The
    count and the page are two reads, not one snapshot."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        page = inputs()
        total = await uow.accounts.count(tenant.id, page.provider)
        offset = (page.number - 1) * page.size
        items: list[Account] = []
        if offset < total:
            items = await uow.accounts.page(
                tenant.id, tenant.api_key, page.provider, offset, page.size, total
            )
    return AccountPage(items, page.number, page.size, total, page.provider)


async def link_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    provider: Provider | None,
    external_id: str,
    inputs: Callable[[], str],
) -> Account:
    """Link one application. The same one again changes nothing; another one is a conflict.
    An account that is not the caller's (or a provider outside the enum) is 403."""
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        application_id = inputs()
        try:
            account = await _get(uow, tenant, provider, external_id)
        except AccountNotFound:
            raise CannotLink() from None
        await _require_linkable(uow, tenant, application_id)
        if not await uow.accounts.link(tenant.id, account.provider, external_id, application_id):
            raise LinkConflict()
        await uow.commit()
    return msgspec.structs.replace(account, application_id=application_id)


async def unlink_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    provider: Provider | None,
    external_id: str,
    application_id: str,
) -> None:
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        try:
            account = await _get(uow, tenant, provider, external_id)
        except AccountNotFound:
            raise CannotUnlink() from None
        unlinked = rules.could_be_id(application_id) and await uow.accounts.unlink(
            tenant.id, account.provider, external_id, application_id
        )
        if not unlinked:
            raise UnlinkConflict()
        await uow.commit()


async def provision_account(
    uow_factory: UnitOfWorkFactory,
    *,
    api_key: str,
    provider: Provider,
    external_id: str,
    name: str | None = None,
    access_token: str | None = None,
    phone_number_id: str | None = None,
    waba_id: str | None = None,
) -> Account:
    """The operator's way to register any provider's account for a tenant (the CLI). A
    WhatsApp number that sends live comes with its Cloud API `phone_number_id`, WABA id and
    access token (all three, or none: a sandbox number)."""
    problems = [
        InvalidInput.one(field, reason)
        for field, reason in (
            ("external_id", rules.external_id_problem(external_id)),
            ("name", rules.name_problem(name) if name is not None else None),
            (
                "access_token",
                rules.access_token_problem(access_token) if access_token is not None else None,
            ),
            *(
                (field, rules.external_id_problem(value) if value is not None else None)
                for field, value in (("phone_number_id", phone_number_id), ("waba_id", waba_id))
            ),
        )
        if reason
    ]
    if problems:
        raise InvalidInput([p for problem in problems for p in problem.params])
    if provider is Provider.MESSENGER and not access_token:
        raise InvalidInput.one("access_token", "a messenger account needs an access token")
    cloud = {"phone_number_id": phone_number_id, "waba_id": waba_id, "access_token": access_token}
    if provider is Provider.WHATSAPP:
        missing = [field for field, value in cloud.items() if value is None]
        if 0 < len(missing) < len(cloud):
            raise InvalidInput.one(
                missing[0],
                "a live whatsapp number needs its phone_number_id, waba_id and access token "
                "(all three; none for a sandbox number)",
            )
    elif provider is not Provider.MESSENGER and access_token is not None:
        raise InvalidInput.one("access_token", f"a {provider.value} account has no access token")
    if provider is not Provider.WHATSAPP and (phone_number_id or waba_id):
        field = "phone_number_id" if phone_number_id else "waba_id"
        raise InvalidInput.one(field, f"only a whatsapp account has a {field}")
    async with uow_factory(write=True) as uow:
        record = await uow.tenants.by_api_key(api_key) if rules.could_be_id(api_key) else None
        if record is None or record.revoked:
            raise TenantNotFound(api_key)
        tenant = Tenant(record.id, record.api_key)
        account = Account(provider, external_id, tenant.api_key, name, access_token,
                          phone_number_id=phone_number_id, waba_id=waba_id)  # fmt: skip
        await _add(uow, tenant, account)
        await uow.commit()
    return account


async def replace_access_token(
    uow_factory: UnitOfWorkFactory, *, provider: Provider, external_id: str, access_token: str
) -> str | None:
    """The operator replaces a live account's token (the CLI): a Messenger page token, or a
    WhatsApp number's Cloud API token (which tenants cannot PATCH). Sealed like the first. The
    account's tenant's api_key (for the audit log)."""
    if provider not in (Provider.MESSENGER, Provider.WHATSAPP):
        raise InvalidInput.one("access_token", f"a {provider.value} account has no access token")
    problem = rules.access_token_problem(access_token)
    if problem:
        raise InvalidInput.one("access_token", problem)
    async with uow_factory(write=True) as uow:
        owner = None
        if rules.could_be_external_id(external_id):
            owner = await uow.accounts.owner(provider, external_id)
        if owner is None:
            raise AccountNotFound()
        await uow.accounts.update(owner, provider, external_id, name=None,
                                  access_token=access_token, set_name=False,
                                  set_access_token=True)  # fmt: skip
        api_key = await uow.tenants.api_key_of(owner)
        await uow.commit()
    return api_key
