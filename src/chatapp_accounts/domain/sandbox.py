"""Use cases of the sandbox's fault switches (docs/messages.md, "Fault switches"): an account's
`delay` before the sandbox channel takes each of its sends, and a failure (`fail`) forced on
every one, read and set by the account's tenant (the sandbox API) or by the operator on the
command line (any tenant's account). Live channels ignore them. The bounds are rules.py's,
checked here for every caller; the send path reads the switches with the sender's credentials
(messages.prepare_sends), so a change applies to the next send."""

from __future__ import annotations

from collections.abc import Callable

from . import rules
from .errors import AccountNotFound, InvalidMessageParams, InvalidParam
from .models import CHANNEL_PROVIDERS, Credentials, Faults, Provider
from .ports import Security, UnitOfWork, UnitOfWorkFactory
from .tenants import authenticate


def _account(channel: str, external_id: str) -> Provider:
    """The provider of the channel's accounts; AccountNotFound for a channel or an id no
    account can have (not looked up)."""
    provider = CHANNEL_PROVIDERS.get(channel)
    if provider is None or not rules.could_be_external_id(external_id):
        raise AccountNotFound()
    return provider


def check_faults(faults: Faults, max_delay: float) -> Faults:
    """The switches, if they keep to the rules; else the Messages API's 1150 naming each field
    that does not (nothing is changed)."""
    problems = [
        InvalidParam(name, reason)
        for name, reason in (
            ("delay", rules.sandbox_delay_problem(faults.delay, max_delay)),
            ("fail", rules.sandbox_fail_problem(faults.fail)),
        )
        if reason is not None
    ]
    if problems:
        raise InvalidMessageParams(params=problems)
    return faults


async def _read(uow: UnitOfWork, tenant: int, provider: Provider, external_id: str) -> Faults:
    found = await uow.accounts.faults(tenant, provider, external_id)
    if found is None:
        raise AccountNotFound()
    return found


async def get_faults(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    channel: str,
    external_id: str,
) -> Faults:
    """The switches of one of the caller's accounts (another tenant's is not found, as one
    that does not exist)."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        return await _read(uow, tenant.id, _account(channel, external_id), external_id)


async def set_faults(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    channel: str,
    external_id: str,
    inputs: Callable[[], Faults],
    max_delay: float = rules.SANDBOX_DELAY_CAP,
) -> Faults:
    """Replace the switches of one of the caller's accounts; the switches as stored. `max_delay`:
    rules.sandbox_delay_max of the provider timeout the senders use."""
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        faults = check_faults(inputs(), max_delay)
        provider = _account(channel, external_id)
        if not await uow.accounts.set_faults(tenant.id, provider, external_id, faults):
            raise AccountNotFound()
        await uow.commit()
    return faults


# The same, for the operator on the command line (any tenant's account).


async def _owner(uow: UnitOfWork, channel: str, external_id: str) -> tuple[int, Provider]:
    provider = _account(channel, external_id)
    owner = await uow.accounts.owner(provider, external_id)
    if owner is None:
        raise AccountNotFound()
    return owner, provider


async def operator_faults(uow_factory: UnitOfWorkFactory, channel: str, external_id: str,
                          ) -> Faults:  # fmt: skip
    async with uow_factory() as uow:
        owner, provider = await _owner(uow, channel, external_id)
        return await _read(uow, owner, provider, external_id)


async def operator_set_faults(
    uow_factory: UnitOfWorkFactory,
    channel: str,
    external_id: str,
    change: Callable[[Faults], Faults],
    max_delay: float = rules.SANDBOX_DELAY_CAP,
) -> tuple[Faults, str | None]:
    """`change` makes the new switches of the current ones (an option not given keeps its
    switch), read and written in one transaction; the switches as stored, and the account's
    tenant's api_key (for the audit log)."""
    async with uow_factory(write=True) as uow:
        owner, provider = await _owner(uow, channel, external_id)
        faults = check_faults(change(await _read(uow, owner, provider, external_id)), max_delay)
        await uow.accounts.set_faults(owner, provider, external_id, faults)
        api_key = await uow.tenants.api_key_of(owner)
        await uow.commit()
    return faults, api_key
