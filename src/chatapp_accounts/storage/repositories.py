"""SQL implementations of the repositories in domain/ports.py (SQLAlchemy Core)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..domain.errors import AccountAlreadyRegistered, CannotLink
from ..domain.models import Account, Application, Provider, TenantRecord
from ..security.tokens import TokenCipher, row_binding
from .tables import accounts, applications, tenants

_ACCOUNT_COLUMNS = (
    accounts.c.provider,
    accounts.c.external_id,
    tenants.c.api_key,
    accounts.c.name,
    accounts.c.access_token,
    accounts.c.application_id,
)
_ACCOUNT_FROM = accounts.join(tenants, tenants.c.id == accounts.c.tenant_id)


def _account_key(tenant: int, provider: Provider, external_id: str) -> tuple[Any, ...]:
    return (
        accounts.c.tenant_id == tenant,
        accounts.c.provider == provider.value,
        accounts.c.external_id == external_id,
    )


class SqlAccounts:
    def __init__(self, conn: Connection, cipher: TokenCipher) -> None:
        self._conn = conn
        self._cipher = cipher

    def _to_account(self, row: Any) -> Account:
        provider, external_id, api_key, name, token, application_id = row
        if token is not None:
            token = self._cipher.decrypt(token, row_binding(provider, external_id))
        return Account(Provider(provider), external_id, api_key, name, token, application_id)

    def _encrypt(self, provider: Provider, external_id: str, token: str | None) -> bytes | None:
        if token is None:
            return None
        return self._cipher.encrypt(token, row_binding(provider.value, external_id))

    def add(self, tenant: int, account: Account) -> None:
        values = {
            "tenant_id": tenant,
            "provider": account.provider.value,
            "external_id": account.external_id,
            "name": account.name,
            "access_token": self._encrypt(
                account.provider, account.external_id, account.access_token
            ),
            "application_id": account.application_id,
        }
        try:
            self._conn.execute(insert(accounts).values(values))
        except IntegrityError as exc:
            if "application" in str(exc.orig).lower() and account.application_id:
                raise CannotLink() from None  # the application went away meanwhile
            raise AccountAlreadyRegistered(
                f"The {account.provider.value} account '{account.external_id}' "
                "is already registered"
            ) from None

    def get(self, tenant: int, provider: Provider, external_id: str) -> Account | None:
        row = self._conn.execute(
            select(*_ACCOUNT_COLUMNS)
            .select_from(_ACCOUNT_FROM)
            .where(*_account_key(tenant, provider, external_id))
        ).first()
        return self._to_account(row) if row is not None else None

    def owner(self, provider: Provider, external_id: str) -> int | None:
        return self._conn.execute(
            select(accounts.c.tenant_id).where(
                accounts.c.provider == provider.value, accounts.c.external_id == external_id
            )
        ).scalar()

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
    ) -> bool:
        values: dict[str, Any] = {}
        if set_name:
            values["name"] = name
        if set_access_token:
            values["access_token"] = self._encrypt(provider, external_id, access_token)
        if not values:
            return True
        result = self._conn.execute(
            update(accounts).where(*_account_key(tenant, provider, external_id)).values(values)
        )
        return result.rowcount == 1

    def set_application(
        self, tenant: int, provider: Provider, external_id: str, application_id: str | None
    ) -> bool:
        try:
            result = self._conn.execute(
                update(accounts)
                .where(*_account_key(tenant, provider, external_id))
                .values(application_id=application_id)
            )
        except IntegrityError:
            return False
        return result.rowcount == 1

    def link(self, tenant: int, provider: Provider, external_id: str, application_id: str) -> bool:
        # One statement: the database decides between racing links, not a read in the process.
        try:
            result = self._conn.execute(
                update(accounts)
                .where(
                    *_account_key(tenant, provider, external_id),
                    or_(
                        accounts.c.application_id.is_(None),
                        accounts.c.application_id == application_id,
                    ),
                )
                .values(application_id=application_id)
            )
        except IntegrityError:
            raise CannotLink() from None  # the application was deleted meanwhile
        return result.rowcount == 1

    def unlink(
        self, tenant: int, provider: Provider, external_id: str, application_id: str
    ) -> bool:
        result = self._conn.execute(
            update(accounts)
            .where(
                *_account_key(tenant, provider, external_id),
                accounts.c.application_id == application_id,
            )
            .values(application_id=None)
        )
        return result.rowcount == 1

    def unlink_everywhere(self, tenant: int, application_id: str) -> int:
        result = self._conn.execute(
            update(accounts)
            .where(accounts.c.tenant_id == tenant, accounts.c.application_id == application_id)
            .values(application_id=None)
        )
        return result.rowcount

    def delete(self, tenant: int, provider: Provider, external_id: str) -> bool:
        result = self._conn.execute(
            delete(accounts).where(*_account_key(tenant, provider, external_id))
        )
        return result.rowcount == 1

    def _filter(self, tenant: int, provider: Provider | None) -> list[Any]:
        where = [accounts.c.tenant_id == tenant]
        if provider is not None:
            where.append(accounts.c.provider == provider.value)
        return where

    def page(
        self, tenant: int, provider: Provider | None, offset: int, limit: int
    ) -> list[Account]:
        rows = self._conn.execute(
            select(*_ACCOUNT_COLUMNS)
            .select_from(_ACCOUNT_FROM)
            .where(*self._filter(tenant, provider))
            .order_by(accounts.c.pk)
            .offset(offset)
            .limit(limit)
        )
        return [self._to_account(row) for row in rows]

    def count(self, tenant: int, provider: Provider | None) -> int:
        return int(
            self._conn.execute(
                select(func.count()).select_from(accounts).where(*self._filter(tenant, provider))
            ).scalar_one()
        )

    def all_tokens(self) -> list[tuple[int, str, str, bytes]]:
        """(pk, provider, external_id, ciphertext) of every stored token, for key rotation."""
        rows = self._conn.execute(
            select(
                accounts.c.pk, accounts.c.provider, accounts.c.external_id, accounts.c.access_token
            ).where(accounts.c.access_token.is_not(None))
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


def _to_application(row: Any) -> Application:
    return Application(
        id=row.id,
        name=row.name,
        public_key=row.public_key,
        capabilities=json.loads(row.capabilities),
        privacy=json.loads(row.privacy),
    )


def _application_values(application: Application) -> dict[str, Any]:
    return {
        "name": application.name,
        "public_key": application.public_key,
        "capabilities": json.dumps(application.capabilities, separators=(",", ":")),
        "privacy": json.dumps(application.privacy, separators=(",", ":")),
        "has_messages": application.has_messages,
    }


class SqlApplications:
    _columns = (
        applications.c.id,
        applications.c.name,
        applications.c.public_key,
        applications.c.capabilities,
        applications.c.privacy,
    )

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, tenant: int, application: Application) -> None:
        self._conn.execute(
            insert(applications).values(
                id=application.id, tenant_id=tenant, **_application_values(application)
            )
        )

    def get(self, tenant: int, application_id: str) -> Application | None:
        row = self._conn.execute(
            select(*self._columns).where(
                applications.c.tenant_id == tenant, applications.c.id == application_id
            )
        ).first()
        return _to_application(row) if row is not None else None

    def replace(self, tenant: int, application: Application) -> bool:
        result = self._conn.execute(
            update(applications)
            .where(applications.c.tenant_id == tenant, applications.c.id == application.id)
            .values(**_application_values(application))
        )
        return result.rowcount == 1

    def delete(self, tenant: int, application_id: str) -> bool:
        result = self._conn.execute(
            delete(applications).where(
                applications.c.tenant_id == tenant, applications.c.id == application_id
            )
        )
        return result.rowcount == 1

    def page(self, tenant: int, offset: int, limit: int) -> list[Application]:
        rows = self._conn.execute(
            select(*self._columns)
            .where(applications.c.tenant_id == tenant)
            .order_by(applications.c.pk)
            .offset(offset)
            .limit(limit)
        )
        return [_to_application(row) for row in rows]

    def count(self, tenant: int) -> int:
        return int(
            self._conn.execute(
                select(func.count())
                .select_from(applications)
                .where(applications.c.tenant_id == tenant)
            ).scalar_one()
        )

    def signing_key(self, application_id: str) -> tuple[int, str, str] | None:
        row = self._conn.execute(
            select(tenants.c.id, tenants.c.api_key, applications.c.public_key)
            .select_from(applications.join(tenants, tenants.c.id == applications.c.tenant_id))
            .where(applications.c.id == application_id, tenants.c.revoked.is_(False))
        ).first()
        return (row[0], row[1], row[2]) if row is not None else None


class SqlTenants:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, api_key: str, secret_hash: str) -> int:
        result = self._conn.execute(
            insert(tenants).values(api_key=api_key, secret_hash=secret_hash, revoked=False)
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def by_api_key(self, api_key: str) -> TenantRecord | None:
        row = self._conn.execute(
            select(
                tenants.c.id,
                tenants.c.api_key,
                tenants.c.secret_hash,
                tenants.c.revoked,
                tenants.c.created_at,
            ).where(tenants.c.api_key == api_key)
        ).first()
        return _to_tenant(row) if row is not None else None

    def all(self) -> list[TenantRecord]:
        rows = self._conn.execute(
            select(
                tenants.c.id,
                tenants.c.api_key,
                tenants.c.secret_hash,
                tenants.c.revoked,
                tenants.c.created_at,
            ).order_by(tenants.c.id)
        )
        return [_to_tenant(row) for row in rows]

    def revoke(self, api_key: str) -> bool:
        result = self._conn.execute(
            update(tenants).where(tenants.c.api_key == api_key).values(revoked=True)
        )
        return result.rowcount == 1

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(tenants)).scalar_one())


def _to_tenant(row: Any) -> TenantRecord:
    created = row.created_at
    return TenantRecord(
        id=row.id,
        api_key=row.api_key,
        secret_hash=row.secret_hash,
        revoked=bool(row.revoked),
        created_at=created.isoformat() if hasattr(created, "isoformat") else str(created),
    )
