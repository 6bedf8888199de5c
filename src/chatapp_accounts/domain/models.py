"""Plain values the use cases take and return."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    api_key: str


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: int
    api_key: str
    secret_hash: str
    revoked: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class NewTenant:
    """A tenant just made: the only time its api_secret exists in clear."""

    api_key: str
    api_secret: str


@dataclass(frozen=True, slots=True)
class Account:
    provider: Provider
    external_id: str
    api_key: str  # the owner's
    name: str | None = None
    access_token: str | None = None
    application_id: str | None = None

    @property
    def applications(self) -> list[str]:
        return [self.application_id] if self.application_id else []


@dataclass(frozen=True, slots=True)
class AccountPage:
    items: list[Account]
    page_number: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_items // self.page_size)


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    name: str
    public_key: str
    capabilities: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] = field(default_factory=dict)

    @property
    def has_messages(self) -> bool:
        return isinstance(self.capabilities.get("messages"), dict)


@dataclass(frozen=True, slots=True)
class NewApplication:
    """An application just made; private_key is set only when the server generated the pair."""

    application: Application
    private_key: str | None


@dataclass(frozen=True, slots=True)
class ApplicationPage:
    items: list[Application]
    page: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_items // self.page_size)
