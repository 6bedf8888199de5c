"""The hot reads (domain.ports.AccountReads): one account, with the credentials that decide
whether the caller may see it, in one statement.

- On SQLite a read is a few microseconds in process: it runs on the unit of work's connection,
  inline (`InlineAccountReads`).
- On PostgreSQL a read is a round trip to the server: the reads of many requests are sent
  together and overlap (`PipelinedAccountReads`, over pipeline.PipelinedReads).
Both run the same SQL (repositories.Statements) and make the same values of its rows.
"""

from __future__ import annotations

import itertools
import re

from ..domain.models import Account, Provider, TenantRecord
from ..domain.ports import UnitOfWorkFactory
from ..security.tokens import TokenCipher
from .pipeline import PipelinedReads
from .repositories import AccountRows, Statements


class InlineAccountReads:
    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def with_credentials(
        self, api_key: str, provider: Provider, external_id: str
    ) -> tuple[TenantRecord, Account | None] | None:
        with self._uow_factory() as uow:
            return uow.accounts.get_with_credentials(api_key, provider, external_id)

    async def with_application_key(
        self, application_id: str, provider: Provider, external_id: str
    ) -> tuple[tuple[int, str, str], Account | None] | None:
        with self._uow_factory() as uow:
            return uow.accounts.get_with_application_key(application_id, provider, external_id)


def numbered(sql: str) -> str:
    """psycopg's `%s` placeholders as libpq's `$1, $2, …`."""
    counter = itertools.count(1)
    return re.sub("%s", lambda _: f"${next(counter)}", sql)


class PipelinedAccountReads:
    def __init__(self, pipeline: PipelinedReads, sql: Statements, cipher: TokenCipher) -> None:
        self._pipeline = pipeline
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

    def close(self) -> None:
        self._pipeline.close()
