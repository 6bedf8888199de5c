"""Redaction on demand (docs/messages.md, "Redaction"): Vonage's Redact API for tenants
(`POST /v1/redact/transaction`, product `messages`) and the same for the operator (the
command line, the admin API). A redacted message keeps its metadata (uuid, channel, statuses,
times, errors) and loses its content, its webhooks' bodies and its attempts' stored requests
and answers: what the content retention does to every message after
CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS (delivery/dispatcher.py, storage/retention.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from . import rules
from .errors import (
    NotAuthenticated,
    RedactInvalid,
    RedactNotFound,
    RedactPremature,
    RedactUnsupportedProduct,
    TenantNotFound,
)
from .models import BasicCredentials, Credentials, RedactRequest
from .ports import Security, UnitOfWorkFactory
from .tenants import authenticate

PRODUCT: Final = "messages"
# Vonage's Redact API's other products: a 403 here (this server keeps messages only).
OTHER_PRODUCTS: Final = frozenset({"sms", "voice", "number-insight", "verify", "verify-sdk"})
TYPES: Final = ("inbound", "outbound")


def check_redact(request: RedactRequest) -> RedactRequest:
    """422 for a bad `id`, `product` or `type`; 403 for another product of Vonage's."""
    if not request.id or not request.id.strip():
        raise RedactInvalid("id", "must be the message's uuid")
    if request.product in OTHER_PRODUCTS:
        raise RedactUnsupportedProduct(request.product)
    if request.product != PRODUCT:
        choices = ", ".join([PRODUCT, *sorted(OTHER_PRODUCTS)])
        raise RedactInvalid("product", f"must be one of {choices}")
    if request.type is not None and request.type not in TYPES:
        raise RedactInvalid("type", "must be 'inbound' or 'outbound'")
    return request


async def _redact(
    uow_factory: UnitOfWorkFactory, tenant: int | None, message_uuid: str, kind: str | None
) -> None:
    if not rules.could_be_id(message_uuid):
        raise RedactNotFound()
    async with uow_factory(write=True) as uow:
        found = await uow.messages.redact(tenant, message_uuid, time.time())
        if found is None or (kind is not None and kind != found[0]):
            raise RedactNotFound()  # (leaving the unit rolls the removal back)
        if found[1]:
            raise RedactPremature()
        await uow.commit()


async def redact_message(
    uow_factory: UnitOfWorkFactory,
    security: Security,
    credentials: Credentials,
    inputs: Callable[[], RedactRequest],
) -> None:
    """Vonage's `POST /v1/redact/transaction`: the tenant's own message (api_key:api_secret,
    Basic only, as Vonage's), its content removed at once. Again on a redacted message: done
    (nothing left to remove)."""
    if not isinstance(credentials, BasicCredentials):
        raise NotAuthenticated()
    async with uow_factory() as uow:
        tenant = await authenticate(uow, security, credentials)
    request = check_redact(inputs())
    await _redact(uow_factory, tenant.id, request.id, request.type)


async def operator_redact(
    uow_factory: UnitOfWorkFactory, api_key: str | None, message_uuid: str
) -> None:
    """redact_message for the operator (the admin API, `chatapp-accounts messages redact`):
    anyone's message (`api_key` None), or only the tenant's with this api_key; RedactNotFound
    when there is no such message, TenantNotFound when there is no such tenant."""
    tenant = None
    if api_key is not None:
        async with uow_factory() as uow:
            record = await uow.tenants.by_api_key(api_key)
        if record is None:
            raise TenantNotFound(api_key)
        tenant = record.id
    await _redact(uow_factory, tenant, message_uuid, None)
