"""Use cases of the Application API v2 (the part External Accounts depends on)."""

from __future__ import annotations

import uuid
from typing import Any

from ..security.keys import generate_rsa_key_pair
from . import rules
from .errors import ApplicationNotFound
from .models import Application, ApplicationPage, NewApplication, Tenant
from .ports import UnitOfWorkFactory

DEFAULT_PRIVACY: dict[str, Any] = {"improve_ai": True}


def create_application(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    *,
    name: str,
    capabilities: dict[str, Any] | None = None,
    public_key: str | None = None,
    privacy: dict[str, Any] | None = None,
) -> NewApplication:
    """Without a public key the server makes a key pair and hands the private key out once."""
    private_key = None
    if public_key is None:
        private_key, public_key = generate_rsa_key_pair()
    application = Application(
        id=str(uuid.uuid4()),
        name=name,
        public_key=public_key,
        capabilities=capabilities or {},
        privacy={**DEFAULT_PRIVACY, **(privacy or {})},
    )
    with uow_factory(write=True) as uow:
        uow.applications.add(tenant.id, application)
        uow.commit()
    return NewApplication(application, private_key)


def get_application(
    uow_factory: UnitOfWorkFactory, tenant: Tenant, application_id: str
) -> Application:
    if not rules.could_be_id(application_id):
        raise ApplicationNotFound(application_id)
    with uow_factory() as uow:
        application = uow.applications.get(tenant.id, application_id)
    if application is None:
        raise ApplicationNotFound(application_id)
    return application


def update_application(
    uow_factory: UnitOfWorkFactory,
    tenant: Tenant,
    application_id: str,
    *,
    name: str,
    capabilities: dict[str, Any] | None = None,
    public_key: str | None = None,
    privacy: dict[str, Any] | None = None,
) -> Application:
    """PUT semantics: name and capabilities are replaced; an absent key or privacy is kept.

    An application that loses its `messages` capability is unlinked from every account, so
    a linked application always has it.
    """
    if not rules.could_be_id(application_id):
        raise ApplicationNotFound(application_id)
    with uow_factory(write=True) as uow:
        current = uow.applications.get(tenant.id, application_id)
        if current is None:
            raise ApplicationNotFound(application_id)
        updated = Application(
            id=current.id,
            name=name,
            public_key=public_key if public_key is not None else current.public_key,
            capabilities=capabilities or {},
            privacy={**current.privacy, **privacy} if privacy is not None else current.privacy,
        )
        uow.applications.replace(tenant.id, updated)
        if current.has_messages and not updated.has_messages:
            uow.accounts.unlink_everywhere(tenant.id, application_id)
        uow.commit()
    return updated


def delete_application(uow_factory: UnitOfWorkFactory, tenant: Tenant, application_id: str) -> None:
    """Deleting unlinks the application from every account (a foreign key, ON DELETE SET NULL)."""
    if not rules.could_be_id(application_id):
        raise ApplicationNotFound(application_id)
    with uow_factory(write=True) as uow:
        if not uow.applications.delete(tenant.id, application_id):
            raise ApplicationNotFound(application_id)
        uow.commit()


def list_applications(
    uow_factory: UnitOfWorkFactory, tenant: Tenant, *, page: int, page_size: int
) -> ApplicationPage:
    with uow_factory() as uow:
        total = uow.applications.count(tenant.id)
        offset = (page - 1) * page_size
        items = uow.applications.page(tenant.id, offset, page_size) if offset < total else []
    return ApplicationPage(items, page, page_size, total)
