"""Plain values the use cases take and return.

They are frozen msgspec Structs rather than frozen dataclasses: the same immutable values with
the same fields, made about ten times faster (0.07 µs against 0.7 µs), which counts for the
accounts of a page, made one per row.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from . import rules


class Provider(StrEnum):
    MESSENGER = "messenger"
    VIBER_SERVICE_MSG = "viber_service_msg"
    WHATSAPP = "whatsapp"
    RCS = "rcs"

    @classmethod
    def parse(cls, value: str) -> Provider | None:
        try:
            return cls(value)
        except ValueError:
            return None


PROVIDERS = tuple(p.value for p in Provider)


class Tenant(msgspec.Struct, frozen=True):
    id: int
    api_key: str


class BasicCredentials(msgspec.Struct, frozen=True):
    """`Authorization: Basic base64(api_key:api_secret)`."""

    api_key: str
    api_secret: str


class BearerCredentials(msgspec.Struct, frozen=True):
    """`Authorization: Bearer <JWT>`, and the path it was sent to (its `acl` must cover it)."""

    token: str
    path: str


# Who a request says it is, parsed once from its Authorization header; the use cases decide.
Credentials = BasicCredentials | BearerCredentials


class ApplicationKey(msgspec.Struct, frozen=True):
    """The key that verifies an application's JWTs, and the tenant the tokens act as."""

    tenant_id: int
    api_key: str
    public_key: str


class TenantRecord(msgspec.Struct, frozen=True):
    id: int
    api_key: str
    secret_hash: str
    revoked: bool
    created_at: str


class NewTenant(msgspec.Struct, frozen=True):
    """A tenant just made: the only time its api_secret exists in clear, and the one time its
    webhook signature secret is shown."""

    api_key: str
    api_secret: str
    signature_secret: str


class Account(msgspec.Struct, frozen=True):
    provider: Provider
    external_id: str
    api_key: str  # the owner's
    name: str | None = None
    access_token: str | None = None
    application_id: str | None = None

    @property
    def applications(self) -> list[str]:
        return [self.application_id] if self.application_id else []


class AccountPage(msgspec.Struct, frozen=True):
    items: list[Account]
    page_number: int
    page_size: int
    total_items: int
    provider: Provider | None = None  # the filter it was listed with

    @property
    def total_pages(self) -> int:
        return rules.page_count(self.total_items, self.page_size)


class Application(msgspec.Struct, frozen=True):
    id: str
    name: str
    public_key: str
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    privacy: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def has_messages(self) -> bool:
        return isinstance(self.capabilities.get("messages"), dict)


class NewApplication(msgspec.Struct, frozen=True):
    """An application just made; private_key is set only when the server generated the pair."""

    application: Application
    private_key: str | None


class ApplicationPage(msgspec.Struct, frozen=True):
    items: list[Application]
    page: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return rules.page_count(self.total_items, self.page_size)


class ApplicationInput(msgspec.Struct, frozen=True):
    """An application as a create or update gives it (absent parts are None)."""

    name: str
    capabilities: dict[str, Any] | None = None
    public_key: str | None = None
    privacy: dict[str, Any] | None = None


class PageRequest(msgspec.Struct, frozen=True):
    """Which page of a list, and of which provider's accounts (None: all)."""

    number: int
    size: int
    provider: Provider | None = None
