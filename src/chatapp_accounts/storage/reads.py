"""The hot reads (domain.ports.AccountReads): one account, with the credentials that decide
whether the caller may see it, in one statement; and the account list's count and page.

- On SQLite a read is a few microseconds in process: it runs on the unit of work's connection,
  inline (`InlineAccountReads`).
- On PostgreSQL a read is a round trip to the server: the reads of many requests are sent
  together and overlap (`PipelinedAccountReads`, over pipeline.PipelinedReads).
Both run the same SQL (repositories.Statements) and make the same values of its rows.
"""

from __future__ import annotations

import functools
import itertools
import re

from ..domain.models import Account, Provider, Tenant, TenantRecord
from ..security.tokens import TokenCipher
from .pipeline import PipelinedReads
from .repositories import AccountRows, SqlAccounts, Statements
from .uow import SqlUnitOfWorkFactory


class InlineAccountReads:
    """The reads on the thread's own connection (the units of work's), each a statement of its
    own outside any transaction."""

    def __init__(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        self._read = uow_factory.read_accounts

    async def with_credentials(
        self, api_key: str, provider: Provider, external_id: str
    ) -> tuple[TenantRecord, Account | None] | None:
        return self._read(SqlAccounts.get_with_credentials, api_key, provider, external_id)

    async def with_application_key(
        self, application_id: str, provider: Provider, external_id: str
    ) -> tuple[tuple[int, str, str], Account | None] | None:
        return self._read(
            SqlAccounts.get_with_application_key, application_id, provider, external_id
        )

    async def count(self, tenant: int, provider: Provider | None) -> int:
        return self._read(SqlAccounts.count, tenant, provider)

    async def count_with_credentials(
        self, api_key: str, provider: Provider | None
    ) -> tuple[TenantRecord, int] | None:
        return self._read(SqlAccounts.count_with_credentials, api_key, provider)

    async def page(
        self, owner: Tenant, provider: Provider | None, offset: int, limit: int, total: int
    ) -> list[Account]:
        return self._read(SqlAccounts.page, owner, provider, offset, limit, total)


@functools.cache
def numbered(sql: str) -> str:
    """psycopg's `%s` placeholders as libpq's `$1, $2, …`."""
    counter = itertools.count(1)
    return re.sub("%s", lambda _: f"${next(counter)}", sql)


class PipelinedAccountReads:
    def __init__(self, pipeline: PipelinedReads, sql: Statements, cipher: TokenCipher) -> None:
        self._pipeline = pipeline
        self._sql = sql
        self._rows = AccountRows(cipher)
        self._with_tenant = numbered(sql.account_with_tenant)
        self._with_application = numbered(sql.account_with_application)

    async def with_credentials(
        self, api_key: str, provider: Provider, external_id: str
    ) -> tuple[TenantRecord, Account | None] | None:
        row = await self._pipeline.fetchone(
            self._with_tenant, (provider.value, external_id, api_key)
        )
        return self._rows.with_credentials(row)

    async def with_application_key(
        self, application_id: str, provider: Provider, external_id: str
    ) -> tuple[tuple[int, str, str], Account | None] | None:
        row = await self._pipeline.fetchone(
            self._with_application, (provider.value, external_id, application_id)
        )
        return self._rows.with_application_key(row)

    async def count(self, tenant: int, provider: Provider | None) -> int:
        statement, params = self._sql.account_count_of(tenant, provider)
        row = await self._pipeline.fetchone(numbered(statement), _texts(params))
        assert row is not None  # an aggregate's one row
        return int(row[0])

    async def count_with_credentials(
        self, api_key: str, provider: Provider | None
    ) -> tuple[TenantRecord, int] | None:
        statement, params = self._sql.account_count_with_credentials(api_key, provider)
        row = await self._pipeline.fetchone(numbered(statement), _texts(params))
        return self._rows.count_with_credentials(row)

    async def page(
        self, owner: Tenant, provider: Provider | None, offset: int, limit: int, total: int
    ) -> list[Account]:
        statement, params = self._sql.account_page(owner.id, provider, offset, limit, total)
        rows = await self._pipeline.fetchall(numbered(statement), _texts(params))
        return self._rows.page(rows, owner.api_key)

    def close(self) -> None:
        self._pipeline.close()


def _texts(params: tuple[object, ...]) -> tuple[str, ...]:
    return tuple(map(str, params))
