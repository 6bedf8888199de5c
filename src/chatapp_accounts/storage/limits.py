"""The tenants' limits in the database (migration 0014, docs/limits.md): `rate_windows` holds
how much of each tenant's limit on each API the processes have taken in each second. A claim
adds to it and reads it back in one statement, atomically on both databases, so what all
processes take in a second never adds up to more than the limit."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.limits import MESSAGES, Claim, Taken
from ..domain.models import TenantLimits
from .batch import CHUNK
from .uow import SqlUnitOfWorkFactory

_ROW = "(?, ?, ?, ?)"


class RateWindows:
    """Claims on the tenants' limits, in one transaction of a few multi-row statements."""

    def __init__(self, uow_factory: SqlUnitOfWorkFactory, requests: int, messages: int) -> None:
        self._uow_factory = uow_factory
        self._defaults = (messages, requests)
        self._purge = uow_factory.db.sql("DELETE FROM rate_windows WHERE at_second < ?")
        self._overrides = uow_factory.db.sql(
            "SELECT id, requests_per_second, messages_per_second FROM tenants "
            "WHERE requests_per_second IS NOT NULL OR messages_per_second IS NOT NULL"
        )
        self._statements: dict[int, str] = {}

    def _claim_sql(self, rows: int) -> str:
        sql = self._statements.get(rows)
        if sql is None:
            values = ", ".join([_ROW] * rows)
            sql = self._statements[rows] = self._uow_factory.db.sql(
                f"INSERT INTO rate_windows (tenant_id, api, at_second, used) VALUES {values} "  # noqa: S608 - placeholders only
                "ON CONFLICT (tenant_id, api, at_second) "
                "DO UPDATE SET used = rate_windows.used + excluded.used "
                "RETURNING tenant_id, api, at_second, used, (SELECT CASE WHEN rate_windows.api = "
                "? THEN COALESCE(t.messages_per_second, ?) "
                "ELSE COALESCE(t.requests_per_second, ?) END "
                "FROM tenants t WHERE t.id = rate_windows.tenant_id)"
            )
        return sql

    async def claim(self, claims: Sequence[Claim]) -> dict[Claim, Taken]:
        """Take up to `want` of each claim's tenant's limit on its API in its second. Claims
        are distinct; taken in key order (two processes never wait on each other's rows)."""
        ordered = sorted(claims)
        taken: dict[Claim, Taken] = {}
        wanted = {(c.tenant_id, c.api, c.second): c for c in ordered}
        async with self._uow_factory(write=True) as uow:
            for start in range(0, len(ordered), CHUNK):
                chunk = ordered[start : start + CHUNK]
                params = [v for c in chunk for v in c]
                params += [MESSAGES, *self._defaults]
                rows = await uow.conn.fetchall(self._claim_sql(len(chunk)), params)
                for tenant_id, api, second, used, limit in rows:
                    claim = wanted[(int(tenant_id), api, int(second))]
                    if limit is None:  # (no such tenant: deleted meanwhile)
                        limit = self._defaults[0] if api == MESSAGES else self._defaults[1]
                    before = int(used) - claim.want
                    taken[claim] = Taken(max(0, min(claim.want, limit - before)), limit)
            await uow.commit()
        return taken

    async def overrides(self) -> dict[int, TenantLimits]:
        """The own limits of the tenants that have any, by tenant id."""
        async with self._uow_factory() as uow:
            rows = await uow.conn.fetchall(self._overrides)
        return {int(row[0]): TenantLimits(row[1], row[2]) for row in rows}

    async def purge(self, before: int) -> int:
        """Forget the seconds before `before`."""
        async with self._uow_factory(write=True) as uow:
            removed = await uow.conn.execute(self._purge, (before,))
            await uow.commit()
        return removed
