"""Use cases of the Application API v2 (the part External Accounts depends on)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from . import rules
from .errors import ApplicationNotFound
from .models import (
    Application,
    ApplicationInput,
    ApplicationPage,
    Credentials,
    NewApplication,
    PageRequest,
)
from .ports import Security, UnitOfWorkFactory
from .tenants import authenticate

DEFAULT_PRIVACY: dict[str, Any] = {"improve_ai": True}


async def create_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], ApplicationInput],
) -> NewApplication:
    """Without a public key the server makes a key pair and hands the private key out once.
    The key pair is made between the caller's authentication and the insert, in no unit of
    work: nothing is held open for the tens of milliseconds it takes."""
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
    data = inputs()
    private_key, public_key = None, data.public_key
    if public_key is None:
        private_key, public_key = await security.new_key_pair()
    application = Application(
        id=str(uuid.uuid4()),
        name=data.name,
        public_key=public_key,
        capabilities=data.capabilities or {},
        privacy={**DEFAULT_PRIVACY, **(data.privacy or {})},
    )
    async with uow_factory(write=True) as uow:
        await uow.applications.add(tenant.id, application)
        await uow.commit()
    return NewApplication(application, private_key)


async def get_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    application_id: str,
) -> Application:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        found = None
        if rules.could_be_id(application_id):
            found = await uow.applications.get(tenant.id, application_id)
    if found is None:
        raise ApplicationNotFound(application_id)
    return found


async def update_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    application_id: str,
    inputs: Callable[[], ApplicationInput],
) -> Application:
    """PUT semantics: name and capabilities are replaced; an absent key or privacy is kept.

    An application that loses its `messages` capability is unlinked from every account, so
    a linked application always has it.
    """
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        data = inputs()
        current = None
        if rules.could_be_id(application_id):
            current = await uow.applications.get(tenant.id, application_id)
        if current is None:
            raise ApplicationNotFound(application_id)
        updated = Application(
            id=current.id,
            name=data.name,
            public_key=data.public_key if data.public_key is not None else current.public_key,
            capabilities=data.capabilities or {},
            privacy={**current.privacy, **data.privacy}
            if data.privacy is not None
            else current.privacy,
        )
        await uow.applications.replace(tenant.id, updated)
        if current.has_messages and not updated.has_messages:
            await uow.accounts.unlink_everywhere(tenant.id, application_id)
        await uow.commit()
    return updated


async def delete_application(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    application_id: str,
) -> None:
    """Deleting unlinks the application from every account (a foreign key, ON DELETE SET NULL)."""
    async with uow_factory(write=True) as uow:
        tenant = await authenticate(uow, security, credentials)
        if not rules.could_be_id(application_id) or not await uow.applications.delete(
            tenant.id, application_id
        ):
            raise ApplicationNotFound(application_id)
        await uow.commit()


async def list_applications(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], PageRequest],
) -> ApplicationPage:
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
        page = inputs()
        total = await uow.applications.count(tenant.id)
        offset = (page.number - 1) * page.size
        items = await uow.applications.page(tenant.id, offset, page.size) if offset < total else []
    return ApplicationPage(items, page.number, page.size, total)
