"""The operators' tables (migration 0010): admin tokens (their hashes) and the audit log.
Reference tables: they belong to no tenant (docs/scaling.md)."""

from __future__ import annotations

from typing import Any

from ..domain.models import Actor, AdminTokenRecord, AuditEntry
from .db import Connection, Database, conditions

_TOKEN = "SELECT id, name, scopes, created_at, revoked FROM admin_tokens "  # noqa: S105
_AUDIT = "SELECT id, at, actor, action, tenant, request_id, outcome FROM audit_log "


class AdminStatements:
    """The statements of one dialect, translated once per database."""

    def __init__(self, db: Database) -> None:
        q = db.sql
        self.token_add = q(
            "INSERT INTO admin_tokens (name, token_hash, scopes, created_at, revoked) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.token_by_hash = q(_TOKEN + "WHERE token_hash = ?")
        self.token_all = q(_TOKEN + "ORDER BY id")
        self.token_revoke = q("UPDATE admin_tokens SET revoked = ? WHERE name = ?")
        self.audit_add = q(
            "INSERT INTO audit_log (at, actor, action, tenant, request_id, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        self.q = q


def _token(row: Any) -> AdminTokenRecord:
    id_, name, scopes, created_at, revoked = row
    return AdminTokenRecord(int(id_), name, tuple(scopes.split()), float(created_at), bool(revoked))


def _entry(row: Any) -> AuditEntry:
    id_, at, actor, action, tenant, request_id, outcome = row
    return AuditEntry(int(id_), float(at), actor, action, tenant, request_id, outcome)


class SqlAdminTokens:
    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: Connection, sql: AdminStatements) -> None:
        self._conn = conn
        self._sql = sql

    async def add(self, name: str, token_hash: str, scopes: tuple[str, ...], at: float) -> bool:
        params = (name, token_hash, " ".join(scopes), at, False)
        return await self._conn.execute(self._sql.token_add, params) == 1

    async def by_hash(self, token_hash: str) -> AdminTokenRecord | None:
        row = await self._conn.fetchone(self._sql.token_by_hash, (token_hash,))
        return _token(row) if row is not None else None

    async def all(self) -> list[AdminTokenRecord]:
        return [_token(row) for row in await self._conn.fetchall(self._sql.token_all)]

    async def revoke(self, name: str) -> bool:
        return await self._conn.execute(self._sql.token_revoke, (True, name)) == 1


class SqlAudit:
    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: Connection, sql: AdminStatements) -> None:
        self._conn = conn
        self._sql = sql

    async def add(
        self, at: float, actor: Actor, action: str, tenant: str | None, outcome: str
    ) -> None:
        params = (at, actor.name, action, tenant, actor.request_id, outcome)
        await self._conn.execute(self._sql.audit_add, params)

    async def find(
        self,
        actor: str | None,
        tenant: str | None,
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[AuditEntry]:
        where, params = conditions(
            (("actor = ?", actor), ("tenant = ?", tenant), ("at >= ?", since), ("at < ?", until))
        )
        sql = _AUDIT + f"WHERE {where} ORDER BY id LIMIT ?"
        rows = await self._conn.fetchall(self._sql.q(sql), (*params, limit))
        return [_entry(row) for row in rows]
