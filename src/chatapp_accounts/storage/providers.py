"""Live channels' ids (SqlProviderMessages, migration 0008): the provider's id of each message
sent or received through Meta or RBM, and the statuses held for ids not recorded yet.

Rows that follow a send's outcome (`add`) and held statuses (`hold`) are written with their unit
of work like the other message rows (storage/batch.py); `add` ignores an id already recorded (a
send tried again after a crash, RBM's id being our uuid). Callbacks run in write units: on
SQLite the one writer takes them one at a time; on PostgreSQL `lock` takes a transaction lock on
a provider id before it is looked up (two deliveries of one inbound message: the second finds
the first), and `find` locks the message's row (two callbacks about one message apply their
statuses one after the other)."""

from __future__ import annotations

import json
from typing import Any

from ..domain.models import StatusChange
from ..domain.providers import HeldStatus
from .batch import Insert, Op
from .db import Connection, Database, placeholders
from .outbox import MESSAGE_PK

_COLUMNS = "channel, provider_id, tenant_id, message_pk, account, peer, at"
_ROW = f"(?, ?, ?, {MESSAGE_PK}, ?, ?, ?)"
_HELD = "tenant_id, channel, provider_id, status, at, error, received_at"


class ProviderStatements:
    def __init__(self, db: Database) -> None:
        q = self.q = db.sql
        lock = " FOR UPDATE OF m" if db.dialect == "postgresql" else ""
        self.find = q(
            "SELECT m.uuid FROM provider_messages p JOIN messages m ON m.pk = p.message_pk "  # noqa: S608 - the lock clause is this module's
            "AND m.tenant_id = p.tenant_id "
            f"WHERE p.channel = ? AND p.provider_id = ? AND p.tenant_id = ?{lock}"
        )
        # One order (by pk): two transactions lock their messages alike. `marks`: placeholders.
        self.find_many = (
            "SELECT p.provider_id, m.uuid FROM provider_messages p JOIN messages m "  # noqa: S608 - the lock clause is this module's
            "ON m.pk = p.message_pk AND m.tenant_id = p.tenant_id "
            "WHERE p.channel = ? AND p.tenant_id = ? AND p.provider_id IN ({marks}) "
            f"ORDER BY m.pk{lock}"
        )
        self.of_message = q(
            "SELECT p.provider_id FROM provider_messages p JOIN messages m "
            "ON m.pk = p.message_pk AND m.tenant_id = p.tenant_id "
            "WHERE m.uuid = ? AND m.tenant_id = ? AND p.channel = ?"
        )
        self.before = q(
            "SELECT m.uuid FROM provider_messages p JOIN messages m ON m.pk = p.message_pk "  # noqa: S608 - the lock clause is this module's
            "AND m.tenant_id = p.tenant_id WHERE p.tenant_id = ? AND p.account = ? "
            "AND p.peer = ? AND p.at <= ? AND m.direction = 'outbound' "
            "AND m.status IN ('submitted', 'delivered') AND p.channel = ? "
            f"ORDER BY m.pk LIMIT 1000{lock}"
        )
        self.lock = (
            q("SELECT pg_advisory_xact_lock(hashtext(?))") if db.dialect == "postgresql" else None
        )
        self.held_ready = q(
            "SELECT h.pk, h.tenant_id, h.channel, h.provider_id, h.status, h.at, h.error "
            "FROM held_statuses h JOIN provider_messages p ON p.channel = h.channel "
            "AND p.provider_id = h.provider_id AND p.tenant_id = h.tenant_id "
            "ORDER BY h.pk LIMIT ?"
        )
        # Only those whose id is still unknown: a ready one waits for release_held.
        self.held_expire = q(
            "DELETE FROM held_statuses WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM "
            "provider_messages p WHERE p.channel = held_statuses.channel "
            "AND p.provider_id = held_statuses.provider_id "
            "AND p.tenant_id = held_statuses.tenant_id)"
        )
        self.held_count = q("SELECT COUNT(*) FROM held_statuses")


def _held(row: Any) -> HeldStatus:
    pk, tenant, channel, provider_id, status, at, error = row
    change = StatusChange(status, float(at), json.loads(error) if error else None)
    return HeldStatus(int(pk), int(tenant), str(channel), str(provider_id), change)


class SqlProviderMessages:
    __slots__ = ("_conn", "_ops", "_sql")

    def __init__(self, conn: Connection, sql: ProviderStatements, ops: list[Op]) -> None:
        self._conn = conn
        self._sql = sql
        self._ops = ops

    async def add(self, tenant: int, channel: str, provider_id: str, message_uuid: str,
                  account: str, peer: str, at: float) -> None:  # fmt: skip
        values = (channel, provider_id, tenant, message_uuid, account, peer, at)
        self._ops.append(
            Insert("provider_messages", _COLUMNS, _ROW, values, " ON CONFLICT DO NOTHING")
        )

    async def lock(self, channel: str, provider_id: str) -> None:
        if self._sql.lock is not None:
            await self._conn.fetchone(self._sql.lock, (f"{channel}:{provider_id}",))

    async def find(self, tenant: int, channel: str, provider_id: str) -> str | None:
        row = await self._conn.fetchone(self._sql.find, (channel, provider_id, tenant))
        return str(row[0]) if row is not None else None

    async def find_many(self, tenant: int, channel: str, provider_ids: list[str],
                        ) -> dict[str, str]:  # fmt: skip
        if not provider_ids:
            return {}
        statement = self._sql.q(self._sql.find_many.format(marks=placeholders(len(provider_ids))))
        rows = await self._conn.fetchall(statement, [channel, tenant, *provider_ids])
        return {str(row[0]): str(row[1]) for row in rows}

    async def of_message(self, tenant: int, channel: str, message_uuid: str) -> str | None:
        row = await self._conn.fetchone(self._sql.of_message, (message_uuid, tenant, channel))
        return str(row[0]) if row is not None else None

    async def before(self, tenant: int, channel: str, account: str, peer: str,
                     watermark: float) -> list[str]:  # fmt: skip
        rows = await self._conn.fetchall(
            self._sql.before, (tenant, account, peer, watermark, channel)
        )
        return [str(row[0]) for row in rows]

    async def hold(self, tenant: int, channel: str, provider_id: str, change: StatusChange,
                   received_at: float) -> None:  # fmt: skip
        error = json.dumps(change.error) if change.error is not None else None
        values = (tenant, channel, provider_id, change.status, change.at, error, received_at)
        self._ops.append(Insert("held_statuses", _HELD, "(?, ?, ?, ?, ?, ?, ?)", values))

    async def held_ready(self, limit: int) -> list[HeldStatus]:
        rows = await self._conn.fetchall(self._sql.held_ready, (limit,))
        return [_held(row) for row in rows]

    async def release(self, pks: list[int]) -> None:
        if pks:
            await self._conn.execute(
                self._sql.q(f"DELETE FROM held_statuses WHERE pk IN ({placeholders(len(pks))})"),  # noqa: S608
                pks,
            )

    async def expire_held(self, before: float) -> int:
        return await self._conn.execute(self._sql.held_expire, (before,))
