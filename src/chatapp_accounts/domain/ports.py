"""What the use cases need from storage. storage/ implements these; tests may fake them."""

from __future__ import annotations

from typing import Protocol

from .models import Account, Application, Provider, Tenant, TenantRecord


class AccountRepository(Protocol):
    def add(self, tenant: int, account: Account) -> None:
        """Insert; raises AccountAlreadyRegistered when (provider, external_id) is taken."""

    def get(self, tenant: int, provider: Provider, external_id: str) -> Account | None: ...

    def get_with_credentials(
        self, api_key: str, provider: Provider, external_id: str
    ) -> tuple[TenantRecord, Account | None] | None:
        """The tenant of `api_key` and its account with this key, in one read."""

    def get_with_application_key(
        self, application_id: str, provider: Provider, external_id: str
    ) -> tuple[tuple[int, str, str], Account | None] | None:
        """An application's signing key and its owner's account with this key, in one read."""

    def owner(self, provider: Provider, external_id: str) -> int | None: ...

    def update(
        self,
        tenant: int,
        provider: Provider,
        external_id: str,
        *,
        name: str | None,
        access_token: str | None,
        set_name: bool,
        set_access_token: bool,
    ) -> bool: ...

    def set_application(
        self, tenant: int, provider: Provider, external_id: str, application_id: str | None
    ) -> bool: ...

    def link(self, tenant: int, provider: Provider, external_id: str, application_id: str) -> bool:
        """Atomically set the application where none (or this one) is linked; False otherwise."""

    def unlink(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool: ...

    def unlink_everywhere(self, tenant: int, application_id: str) -> int: ...

    def delete(self, tenant: int, provider: Provider, external_id: str) -> bool: ...


class ApplicationRepository(Protocol):
    def add(self, tenant: int, application: Application) -> None: ...

    def get(self, tenant: int, application_id: str) -> Application | None: ...

    def replace(self, tenant: int, application: Application) -> bool: ...

    def delete(self, tenant: int, application_id: str) -> bool: ...

    def page(self, tenant: int, offset: int, limit: int) -> list[Application]: ...

    def count(self, tenant: int) -> int: ...

    def signing_key(self, application_id: str) -> tuple[int, str, str] | None:
        """(owner tenant id, owner api_key, public key) while the owner is not revoked."""


class TenantRepository(Protocol):
    def add(self, api_key: str, secret_hash: str) -> int: ...

    def by_api_key(self, api_key: str) -> TenantRecord | None: ...

    def all(self) -> list[TenantRecord]: ...

    def revoke(self, api_key: str) -> bool: ...

    def count(self) -> int: ...


class UnitOfWork(Protocol):
    """One transaction. Use cases call commit(); leaving the block without it rolls back."""

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def applications(self) -> ApplicationRepository: ...

    @property
    def tenants(self) -> TenantRepository: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None: ...

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = False) -> UnitOfWork: ...


class AccountReads(Protocol):
    """The hot reads: one account and the credentials that decide who may see it, in one read,
    and the reads of the account list, outside any unit of work. Awaitable, so that on a
    database across the network the reads of many requests overlap."""

    async def with_credentials(
        self, api_key: str, provider: Provider, external_id: str
    ) -> tuple[TenantRecord, Account | None] | None:
        """The tenant of `api_key` (None if there is none) and its account with this key."""

    async def with_application_key(
        self, application_id: str, provider: Provider, external_id: str
    ) -> tuple[tuple[int, str, str], Account | None] | None:
        """The application's signing key (owner id, owner api_key, public key) and the owner's
        account with this key; None if no such application of a live tenant."""

    async def count(self, tenant: int, provider: Provider | None) -> int:
        """How many accounts the tenant has (of this provider)."""

    async def count_with_credentials(
        self, api_key: str, provider: Provider | None
    ) -> tuple[TenantRecord, int] | None:
        """The tenant of `api_key` and count()'s answer for it, in one read."""

    async def page(
        self, owner: Tenant, provider: Provider | None, offset: int, limit: int, total: int
    ) -> list[Account]:
        """`limit` of the owner's accounts from `offset`, in creation order; `total` is
        count()'s answer."""
