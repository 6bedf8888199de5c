"""Send jobs (SqlJobs): the hand-over between `POST /v1/messages` and the channel. A job is
written with its message (storage/batch.py) and claimed by the senders with a lease; on
PostgreSQL `FOR UPDATE SKIP LOCKED` keeps two processes off one job, on SQLite the one writer
does. A lease is `claimed_until`: a job whose lease ran out while it was claimed is due again
(its process died mid-try) and is marked `outcome_unknown` when claimed again."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from ..domain.models import FailoverItem, OutboundMessage, SendJob
from .batch import Insert, Op, Update
from .db import Connection, placeholders
from .messages import MessageStatements
from .outbox import MESSAGE_PK

_encode = msgspec.json.Encoder().encode
_failover = msgspec.json.Decoder(list[FailoverItem])

_COLUMNS = "tenant_id, message_pk, state, attempts, due_at, status_url, failover, created_at"
_ROW = f"(?, {MESSAGE_PK}, 'pending', 0, ?, ?, ?, ?)"
_MESSAGES = (
    "SELECT m.pk, COALESCE(r.uuid, m.uuid), m.uuid, m.channel, m.message_type, m.to_id, "
    "m.from_id, m.content, m.client_ref, m.webhook_url, m.workflow, m.application_id "
    "FROM messages m LEFT JOIN messages r ON r.pk = m.root_pk WHERE m.pk IN "
)


class SqlJobs:
    __slots__ = ("_conn", "_ops", "_sql")

    def __init__(self, conn: Connection, sql: MessageStatements, ops: list[Op]) -> None:
        self._conn = conn
        self._sql = sql
        self._ops = ops

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
        jobs = await self._conn.fetchall(self._sql.job_claim, (lease_until, now, now, now, limit))
        if not jobs:
            return []
        pks = [int(job[2]) for job in jobs]
        messages = {
            int(row[0]): row
            for row in await self._conn.fetchall(
                self._sql.q(_MESSAGES + f"({placeholders(len(pks))})"), pks
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

    async def defer(self, job: SendJob, due_at: float) -> None:
        # (first_attempt_at stays: the horizon counts from the first claim. Setting it back to
        # NULL would make a batch's CASE of NULLs untyped on PostgreSQL.)
        sets = (("due_at", due_at), ("claimed_until", 0.0), ("attempts", job.attempts - 1))
        self._ops.append(Update("send_jobs", "pk", job.pk, sets))

    async def cancel(self, message: int) -> None:
        self._ops.append(Update("send_jobs", "message_pk", message, (("state", "cancelled"),)))

    async def existing(self, pks: list[int]) -> set[int]:
        found = await self._conn.fetchall(
            self._sql.q(f"SELECT pk FROM send_jobs WHERE pk IN ({placeholders(len(pks))})"),  # noqa: S608 - placeholders
            pks,
        )
        return {int(row[0]) for row in found}

    async def backlog(self, now: float) -> tuple[int, float | None]:
        row = await self._conn.fetchone(self._sql.job_due, (now,))
        if row is None or not row[0]:
            return 0, None
        return int(row[0]), float(row[1])
