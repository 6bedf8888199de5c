"""Send jobs (SqlJobs): the hand-over between `POST /v1/messages` and the channel. A job is
written with its message (storage/batch.py) and claimed by the senders with a lease; on
PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two processes off one job, on SQLite the one writer
does. A lease is `claimed_until`: a job whose lease ran out while it was claimed is due again
(its process died mid-try) and is marked `outcome_unknown` when claimed again."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import msgspec

from ..domain.models import FailoverItem, OutboundMessage, SendJob
from .batch import Insert, Op, Update
from .db import Connection, Database
from .outbox import MESSAGE_PK, placeholders

_encode = msgspec.json.Encoder().encode
_failover = msgspec.json.Decoder(list[FailoverItem])

_COLUMNS = "tenant_id, message_pk, state, attempts, due_at, status_url, failover, created_at"
_ROW = f"(?, {MESSAGE_PK}, 'pending', 0, ?, ?, ?, ?)"
_MESSAGES = (
    "SELECT m.pk, COALESCE(r.uuid, m.uuid), m.uuid, m.channel, m.message_type, m.to_id, "
    "m.from_id, m.content, m.client_ref, m.webhook_url, m.workflow, m.application_id "
    "FROM messages m LEFT JOIN messages r ON r.pk = m.root_pk WHERE m.pk IN "
)


@functools.lru_cache(maxsize=4)
def _statements(dialect: str, q: Callable[[str], str]) -> tuple[str, str]:
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    # A lease taken by a process that died is `claimed_until` in the past: that try's outcome
    # is unknown (the channel may have taken the message).
    claim = q(
        "UPDATE send_jobs SET claimed_until = ?, attempts = attempts + 1, "  # noqa: S608 - the lock clause is this module's
        "first_attempt_at = COALESCE(first_attempt_at, ?), "
        "outcome_unknown = (COALESCE(claimed_until, 0) > 0) "
        "WHERE pk IN (SELECT pk FROM send_jobs WHERE state = 'pending' AND due_at <= ? "
        "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY due_at LIMIT ?"
        f"{lock}) RETURNING pk, tenant_id, message_pk, attempts, first_attempt_at, "
        "outcome_unknown, failover, status_url, created_at"
    )
    due = q("SELECT COUNT(*), MIN(due_at) FROM send_jobs WHERE state = 'pending' AND due_at <= ?")
    return claim, due


class SqlJobs:
    __slots__ = ("_claim", "_conn", "_due", "_ops", "_q")

    def __init__(self, conn: Connection, db: Database, ops: list[Op]) -> None:
        self._conn = conn
        self._q = db.sql
        self._ops = ops
        self._claim, self._due = _statements(db.dialect, db.sql)

    async def add(
        self,
        tenant: int,
        message_uuid: str,
        status_url: str | None,
        failover: list[FailoverItem],
        due_at: float,
    ) -> None:
        rest = _encode(failover).decode() if failover else None
        values = (tenant, message_uuid, due_at, status_url, rest, due_at)
        self._ops.append(Insert("send_jobs", _COLUMNS, _ROW, values))

    async def claim(self, now: float, lease_until: float, limit: int) -> list[SendJob]:
        jobs = await self._conn.fetchall(self._claim, (lease_until, now, now, now, limit))
        if not jobs:
            return []
        pks = [int(job[2]) for job in jobs]
        messages = {
            int(row[0]): row
            for row in await self._conn.fetchall(
                self._q(_MESSAGES + f"({placeholders(len(pks))})"), pks
            )
        }
        claimed = []
        for pk, tenant, message_pk, attempts, first, unknown, rest, url, created in jobs:
            row: Any = messages.get(int(message_pk))
            if row is None:  # pruned meanwhile: nothing to send
                continue
            message = OutboundMessage(
                channel=row[3],
                message_type=row[4],
                to=row[5],
                sender=row[6],
                content=json.loads(row[7]),
                client_ref=row[8],
                webhook_url=row[9],
            )
            claimed.append(
                SendJob(
                    pk=int(pk),
                    tenant_id=int(tenant),
                    message=message,
                    message_uuid=row[2],
                    root=row[1],
                    application_id=row[11],
                    status_url=url,
                    workflow=json.loads(row[10]) if row[10] is not None else None,
                    attempts=int(attempts),
                    first_attempt_at=float(first),
                    outcome_unknown=bool(unknown),
                    failover=_failover.decode(rest) if rest else [],
                    created_at=float(created),
                )
            )
        return claimed

    async def finish(self, job: int, provider_message_id: str | None) -> None:
        sets = (("state", "done"), ("provider_message_id", provider_message_id))
        self._ops.append(Update("send_jobs", "pk", job, sets))

    async def retry(self, job: int, due_at: float) -> None:
        # 0, not NULL, gives the lease back: a CASE of NULLs alone has no type on PostgreSQL.
        self._ops.append(
            Update("send_jobs", "pk", job, (("due_at", due_at), ("claimed_until", 0.0)))
        )

    async def cancel(self, message: int) -> None:
        self._ops.append(Update("send_jobs", "message_pk", message, (("state", "cancelled"),)))

    async def backlog(self, now: float) -> tuple[int, float | None]:
        row = await self._conn.fetchone(self._due, (now,))
        if row is None or not row[0]:
            return 0, None
        return int(row[0]), float(row[1])
