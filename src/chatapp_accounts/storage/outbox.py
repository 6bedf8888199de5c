"""The webhook outbox: the repository use cases write webhooks through (SqlWebhooks: rows
committed with their unit of work, storage/batch.py) and the dispatcher's side (Outbox: claim,
record, prune, stats). Plain SQL, the same on both databases but for PostgreSQL's row locks
(`FOR UPDATE SKIP LOCKED`) when claiming."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from ..domain.models import AttemptRecord, AttemptResult, OutboxFilter, WebhookRecord
from ..security.tokens import TokenCipher, signature_binding
from . import batch
from .batch import CHUNK, Insert, Op, Update
from .db import Connection, Database, conditions, placeholders
from .retention import ContentRemoval

if TYPE_CHECKING:
    from .messages import MessageStatements

_encode = msgspec.json.Encoder().encode
MESSAGE_PK = "(SELECT pk FROM messages WHERE uuid = ?)"

_WEBHOOK = (
    "SELECT w.pk, m.uuid, t.api_key, w.kind, w.url, w.state, w.created_at, w.due_at, w.body, "
    "m.content_removed_at "
    "FROM webhooks w JOIN messages m ON m.pk = w.message_pk JOIN tenants t ON t.id = w.tenant_id "
)
_COLUMNS = (
    "tenant_id, message_pk, order_key, application_id, kind, url, destination, body, state, "
    "attempts, due_at, created_at"
)
_ROW = f"(?, {MESSAGE_PK}, {MESSAGE_PK}, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
# The tenant's own, or (None) anyone's: the operator's.
_OWNER = "COALESCE(?, w.tenant_id)"
# A webhook's tenant's api_key (RETURNING it from a change of `webhooks`: for the audit log).
OWNER = "(SELECT api_key FROM tenants WHERE id = webhooks.tenant_id)"
# Sent again from now, with a new retry window (the operator's redelivery): `due_at`, then the
# rows' condition.
REDELIVER = (
    "UPDATE webhooks SET state = 'pending', due_at = ?, attempts = 0, first_attempt_at = NULL, "
    "claimed_until = NULL WHERE "
)


def _where(where: OutboxFilter) -> tuple[str, list[Any]]:
    """The operator's filters as SQL on `webhooks w`. A tenant by its id (the api_key looked
    up once): ix_webhooks_tenant_id_pk serves it, newest first."""
    return conditions(
        (
            ("w.state = ?", where.state),
            ("w.tenant_id = (SELECT id FROM tenants WHERE api_key = ?)", where.tenant),
            ("w.created_at >= ?", where.since),
            ("w.created_at < ?", where.until),
        )
    )


_ATTEMPT_COLUMNS = (
    "tenant_id, webhook_pk, at, url, status_code, error, next_attempt_at, request_headers, "
    "answer, latency"
)
_ATTEMPT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _attempt(r: AttemptResult) -> Insert:
    """The webhook_attempts row of an attempt's result."""
    values = (r.tenant_id, r.pk, r.at, r.url, r.status_code, r.error, r.next_attempt_at,
              r.request_headers, r.answer, r.latency)  # fmt: skip
    return Insert("webhook_attempts", _ATTEMPT_COLUMNS, _ATTEMPT_ROW, values)


@functools.lru_cache(maxsize=4096)  # an application's few URLs, again and again
def destination(url: str) -> str:
    """A webhook URL's scheme://host:port: the destination whose share of the dispatcher it
    takes."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port or default}"


async def webhook_records(
    conn: Connection, q: Any, where: str, params: Sequence[Any], tail: str = " ORDER BY w.pk"
) -> list[WebhookRecord]:
    rows = await conn.fetchall(q(_WEBHOOK + "WHERE " + where + tail), params)
    if not rows:
        return []
    pks = [int(row[0]) for row in rows]
    attempts: dict[int, list[AttemptRecord]] = {pk: [] for pk in pks}
    for webhook, at, url, code, error, next_at, headers, answer, latency in await conn.fetchall(
        q(
            "SELECT webhook_pk, at, url, status_code, error, next_attempt_at, request_headers, "  # noqa: S608
            f"answer, latency FROM webhook_attempts WHERE webhook_pk IN ({placeholders(len(pks))}) "
            "ORDER BY pk"
        ),
        pks,
    ):
        attempts[int(webhook)].append(
            AttemptRecord(
                float(at),
                url,
                code,
                error,
                float(next_at) if next_at is not None else None,
                json.loads(headers) if headers else None,
                answer,
                float(latency) if latency is not None else None,
            )
        )
    return [
        WebhookRecord(
            id=int(row[0]),
            message_uuid=row[1],
            api_key=row[2],
            kind=row[3],
            url=row[4],
            state=row[5],
            attempts=attempts[int(row[0])],
            created_at=float(row[6]),
            next_attempt_at=float(row[7]) if row[5] == "pending" else None,
            body=bytes(row[8]),
            content_removed=row[9] is not None,
        )
        for row in rows
    ]


class SqlWebhooks:
    __slots__ = ("_conn", "_ops", "_sql")

    def __init__(self, conn: Connection, sql: MessageStatements, ops: list[Op]) -> None:
        self._conn = conn
        self._sql = sql
        self._ops = ops

    async def add(
        self,
        tenant: int,
        message_uuid: str,
        order_uuid: str,
        application_id: str,
        kind: str,
        url: str,
        body: dict[str, Any],
        due_at: float,
    ) -> None:
        values = (tenant, message_uuid, order_uuid, application_id, kind, url, destination(url),
                  _encode(body), due_at, due_at)  # fmt: skip
        self._ops.append(Insert("webhooks", _COLUMNS, _ROW, values))

    async def delivered(self, result: AttemptResult) -> None:
        """A webhook delivered at its first attempt."""
        sets = (("state", "delivered"), ("attempts", 1), ("first_attempt_at", result.at))
        self._ops.append(Update("webhooks", "pk", result.pk, sets))
        self._ops.append(_attempt(result))

    async def listing(self, where: OutboxFilter, limit: int) -> list[WebhookRecord]:
        sql, params = _where(where)
        return await webhook_records(
            self._conn, self._sql.q, sql, [*params, limit], " ORDER BY w.pk DESC LIMIT ?"
        )

    async def redeliver(self, webhook_id: int, now: float, tenant: int | None = None) -> str | None:
        """Run at once, in the unit's own transaction (`write=True`): its answer (the
        webhook's tenant's api_key; None: not sent again) is needed."""
        if tenant is None:
            row = await self._conn.fetchone(self._sql.webhook_redeliver, (now, webhook_id))
        else:
            params = (now, webhook_id, tenant)
            row = await self._conn.fetchone(self._sql.webhook_redeliver_own, params)
        return str(row[0]) if row is not None else None

    async def redeliver_failed(
        self, where: OutboxFilter, after: int, limit: int, now: float
    ) -> tuple[int, int, int, int]:
        """Up to `limit` failed webhooks `where` says, past pk `after` (pk order: the partial
        ix_webhooks_failed_pk, or ix_webhooks_tenant_id_pk for a tenant's), sent again from
        `now`, but those whose message's content was removed. (read, redelivered, skipped,
        the last pk read). Run at once, in the unit's own transaction (`write=True`)."""
        sql, params = _where(where)
        rows = await self._conn.fetchall(
            self._sql.q(
                "SELECT w.pk, m.content_removed_at FROM webhooks w "  # noqa: S608 - constants
                f"JOIN messages m ON m.pk = w.message_pk WHERE w.pk > ? AND {sql} "
                "ORDER BY w.pk LIMIT ?"
            ),
            [after, *params, limit],
        )
        kept = [int(pk) for pk, removed in rows if removed is None]
        done = 0
        for start in range(0, len(kept), CHUNK):
            chunk = kept[start : start + CHUNK]
            done += await self._conn.execute(
                self._sql.q(REDELIVER + f"state = 'failed' AND pk IN ({placeholders(len(chunk))})"),
                [now, *chunk],
            )
        last = int(rows[-1][0]) if rows else after
        return len(rows), done, len(rows) - len(kept), last

    async def get(self, tenant: int | None, webhook_id: int) -> WebhookRecord | None:
        found = await webhook_records(self._conn, self._sql.q, "w.pk = ? AND w.tenant_id = "
                                      + _OWNER, [webhook_id, tenant])  # fmt: skip
        return found[0] if found else None

    async def previous(self, webhook: WebhookRecord) -> WebhookRecord | None:
        """The webhook of the same message made before it."""
        found = await webhook_records(
            self._conn, self._sql.q,
            "w.message_pk = (SELECT message_pk FROM webhooks WHERE pk = ?) AND w.pk < ?",
            [webhook.id, webhook.id], " ORDER BY w.pk DESC LIMIT 1",
        )  # fmt: skip
        return found[0] if found else None

    async def resend(
        self, tenant: int | None, webhook_id: int, body: bytes, now: float
    ) -> tuple[int, str] | None:
        """A new webhook like this one (same message, application, kind and URL) with another
        body, due now; its id and its tenant's api_key. Run at once (`write=True`)."""
        row = await self._conn.fetchone(self._sql.webhook_resend, (body, now, now, webhook_id,
                                                                   tenant))  # fmt: skip
        return (int(row[0]), str(row[1])) if row is not None else None


# The dispatcher's side ---------------------------------------------------------------------


class Claimed(msgspec.Struct, frozen=True):
    """A webhook claimed for one attempt, with what signing it takes."""

    pk: int
    tenant_id: int
    url: str
    destination: str
    body: bytes
    attempts: int  # before this one
    first_attempt_at: float | None
    order_key: int
    application_id: str
    api_key: str
    signature_secret: str | None  # None: the tenant has none (made before migration 0005)


_SECRETS_KEPT = 10_000


class Outbox:
    """Claims and records on one connection, in the dispatcher's unit of work."""

    def __init__(self, db: Database, cipher: TokenCipher) -> None:
        q = db.sql
        self._db = db
        self._cipher = cipher
        # Decrypted signature secrets by their ciphertext (a replaced secret has another).
        self._secrets: dict[bytes, str] = {}
        lock = " FOR UPDATE OF w SKIP LOCKED" if db.dialect == "postgresql" else ""
        # Due, not leased, and first of its workflow's pending webhooks (pk order): the
        # statuses of a message reach its URL in order. (Leaving out the destinations whose
        # share is full, with `destination NOT IN (...)`, made claims three times slower on
        # SQLite: 820 -> 290 webhooks/s.)
        # Two steps. The candidates, unlocked: due, not leased, first of their workflow's pending
        # webhooks (pk order: the statuses of a message reach its URL in order), their
        # destination only. Then those chosen (each destination's share respected) are read
        # whole and locked, checked again: on PostgreSQL, locking every candidate wrote a
        # lock into each of 2 x `free` rows a claim, most of them not taken (136 webhooks/s).
        self._candidates = q(
            "SELECT w.pk, w.destination FROM webhooks w "
            "WHERE w.state = 'pending' AND w.due_at <= ? "
            "AND (w.claimed_until IS NULL OR w.claimed_until <= ?) "
            "AND NOT EXISTS (SELECT 1 FROM webhooks p WHERE p.order_key = w.order_key "
            "AND p.pk < w.pk AND p.state = 'pending') "
            "ORDER BY w.due_at LIMIT ?"
        )
        self._chosen = (
            "SELECT w.pk, w.url, w.destination, w.body, w.attempts, w.first_attempt_at, "
            "w.order_key, w.application_id, t.api_key, t.signature_secret, w.tenant_id "
            "FROM webhooks w JOIN tenants t ON t.id = w.tenant_id "
            "WHERE w.state = 'pending' AND (w.claimed_until IS NULL OR w.claimed_until <= ?) "
            "AND w.pk IN "
        )
        self._lock = lock
        # Not SKIP LOCKED: a row another transaction holds is there, not gone.
        self._row_lock = " FOR UPDATE" if db.dialect == "postgresql" else ""
        self._q = q
        self._record = q(
            "UPDATE webhooks SET state = ?, attempts = attempts + 1, due_at = COALESCE(?, due_at), "
            "first_attempt_at = COALESCE(first_attempt_at, ?), claimed_until = NULL WHERE pk = ?"
        )
        # A webhook waiting behind one that is retried waits until that retry: it is not read
        # again and again by every claim meanwhile. When the one ahead ends, it is due at once.
        self._hold = q(
            "UPDATE webhooks SET due_at = ? WHERE order_key = ? AND pk > ? AND state = 'pending' "
            "AND attempts = 0 AND due_at < ?"
        )
        self._release = q(
            "UPDATE webhooks SET due_at = ? WHERE order_key = ? AND pk > ? AND state = 'pending' "
            "AND attempts = 0 AND due_at > ?"
        )
        self._stats = q("SELECT COUNT(*), MIN(created_at) FROM webhooks WHERE state = 'pending'")
        self._due = q(
            "SELECT COUNT(*), MIN(due_at) FROM webhooks WHERE state = 'pending' AND due_at <= ?"
        )
        self._prune = q(
            "DELETE FROM messages WHERE pk IN "
            "(SELECT pk FROM messages WHERE created_at < ? ORDER BY created_at LIMIT ?)"
        )
        self._content = ContentRemoval(q, db.dialect == "postgresql")

    async def claim(
        self,
        conn: Connection,
        now: float,
        lease_until: float,
        free: int,
        room: dict[str, int],
        per_destination: int,
    ) -> list[Claimed]:
        """Up to `free` due webhooks, at most `room[destination]` (else `per_destination`) of
        any destination, leased until `lease_until`. The candidates are locked (PostgreSQL:
        skipping those another process holds); those left over are not leased."""
        picked: list[int] = []
        taken: dict[str, int] = {}
        for pk, dest in await conn.fetchall(self._candidates, (now, now, free * 2)):
            if taken.get(dest, 0) >= room.get(dest, per_destination):
                continue
            taken[dest] = taken.get(dest, 0) + 1
            picked.append(int(pk))
            if len(picked) >= free:
                break
        if not picked:
            return []
        rows = await conn.fetchall(
            self._q(self._chosen + f"({placeholders(len(picked))})" + self._lock),
            [now, *picked],
        )
        chosen: list[Claimed] = []
        for row in rows:
            dest = row[2]
            api_key, sealed = row[8], row[9]
            secret = None
            if sealed is not None:
                sealed = bytes(sealed)
                secret = self._secrets.get(sealed)
                if secret is None:
                    if len(self._secrets) > _SECRETS_KEPT:
                        self._secrets.clear()
                    secret = self._cipher.decrypt(sealed, signature_binding(api_key))
                    self._secrets[sealed] = secret
            chosen.append(
                Claimed(
                    pk=int(row[0]),
                    tenant_id=int(row[10]),
                    url=row[1],
                    destination=dest,
                    body=bytes(row[3]),
                    attempts=int(row[4]),
                    first_attempt_at=float(row[5]) if row[5] is not None else None,
                    order_key=int(row[6]),
                    application_id=row[7],
                    api_key=api_key,
                    signature_secret=secret,
                )
            )
        for start in range(0, len(chosen), CHUNK):
            pks = [c.pk for c in chosen[start : start + CHUNK]]
            marks = placeholders(len(pks))
            lease = "UPDATE webhooks SET claimed_until = ? WHERE pk IN "
            await conn.execute(self._q(lease + f"({marks})"), [lease_until, *pks])
        return chosen

    async def record(self, conn: Connection, results: Sequence[AttemptResult]) -> None:
        """The outcomes of attempts the dispatcher's turn records (retries, failures, and any
        delivered one whose batch failed: a first attempt that delivered is recorded by its
        attempt, SqlWebhooks.delivered): the webhooks' states, what they mean for the webhooks
        behind them, and an attempts row each, written as the batches write theirs."""
        for r in results:
            await conn.execute(self._record, (r.state, r.next_attempt_at, r.first_attempt_at, r.pk))
            if r.state == "pending" and r.next_attempt_at is not None:
                await conn.execute(
                    self._hold, (r.next_attempt_at, r.order_key, r.pk, r.next_attempt_at)
                )
            elif r.retried:
                await conn.execute(self._release, (r.at, r.order_key, r.pk, r.at))
        attempts = [_attempt(r) for r in results]
        await batch.write(conn, attempts, self._q)

    async def existing(self, conn: Connection, pks: list[int]) -> set[int]:
        """Those of these webhooks still stored, locked (PostgreSQL) until the transaction
        ends: a tenant deleted meanwhile waits for it, and its rows are recorded whole."""
        found: set[int] = set()
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            sql = f"SELECT pk FROM webhooks WHERE pk IN ({placeholders(len(chunk))})"  # noqa: S608 - placeholders
            rows = await conn.fetchall(self._q(sql + self._row_lock), chunk)
            found.update(int(row[0]) for row in rows)
        return found

    async def stats(self, conn: Connection) -> tuple[int, float | None]:
        """(pending webhooks, when the oldest of them was made)."""
        row = await conn.fetchone(self._stats)
        if row is None:
            return 0, None
        return int(row[0]), float(row[1]) if row[1] is not None else None

    async def backlog(self, conn: Connection, now: float) -> tuple[int, float | None]:
        """(webhooks due now, when the oldest of them came due): those waiting on a retry time
        are not due."""
        row = await conn.fetchone(self._due, (now,))
        if row is None or not row[0]:
            return 0, None
        return int(row[0]), float(row[1])

    async def prune(self, conn: Connection, before: float, limit: int) -> int:
        """Delete up to `limit` messages made before `before`, with their statuses, webhooks
        and attempts (foreign keys, ON DELETE CASCADE)."""
        return await conn.execute(self._prune, (before, limit))

    async def remove_content(self, conn: Connection, before: float, limit: int, now: float) -> int:
        """Remove the content of up to `limit` messages made before `before` (storage/
        retention.py); how many. Their metadata stays until prune()."""
        return await self._content.batch(conn, before, limit, now)

    async def analyze(self, conn: Connection) -> None:
        """PostgreSQL: fresh statistics of the outbox. A claim is planned from them: on a table
        that grew from nothing faster than autovacuum looks (the first minute of a burst), the
        planner believed 30 of 40,000 due rows and sorted them all on disk for each claim
        (120 ms) instead of reading the first few in due order. SQLite plans without them."""
        if self._db.dialect == "postgresql":
            await conn.execute("ANALYZE webhooks")
