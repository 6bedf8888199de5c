"""Messages and their statuses (SqlMessages). Writes are rows committed with their unit of work
(storage/batch.py), referring to messages by uuid; reads run at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from ..domain.models import (
    Conversation,
    MessageFilter,
    MessageRecord,
    StatusChange,
    StatusRecord,
    StoredMessage,
    WebhookRecord,
)
from .batch import Insert, Op, Update
from .db import Connection, Database, placeholders
from .outbox import MESSAGE_PK, OWNER, REDELIVER, webhook_records
from .retention import remove_content

_encode = msgspec.json.Encoder().encode

_MESSAGE = (
    "SELECT pk, root_pk, tenant_id, uuid, direction, channel, message_type, to_id, from_id, "
    "status, application_id, client_ref, created_at, content, webhook_url, workflow "
    "FROM messages "
)
# Messages with their workflow's first message's uuid and their send job's state: one by its
# uuid (_ONE), or several (_MANY + a list of placeholders).
_MANY = (
    "SELECT m.pk, COALESCE(r.uuid, m.uuid), m.tenant_id, m.uuid, m.direction, m.channel, "
    "m.message_type, m.to_id, m.from_id, m.status, m.application_id, m.client_ref, "
    "m.created_at, m.content, m.webhook_url, m.workflow, j.state "
    "FROM messages m LEFT JOIN messages r ON r.pk = m.root_pk "
    "LEFT JOIN send_jobs j ON j.message_pk = m.pk WHERE m.uuid "
)
_ONE = _MANY + "= ?"
_COLUMNS = (
    "uuid, tenant_id, root_pk, direction, channel, message_type, to_id, from_id, status, "
    "application_id, client_ref, webhook_url, workflow, content, created_at, account, peer"
)
_ROW = f"(?, ?, {MESSAGE_PK}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A webhook is sent again only while its message's content is there (docs/messages.md).
_CONTENT_KEPT = " AND message_pk IN (SELECT pk FROM messages WHERE content_removed_at IS NULL)"
_STATUS_ROW = f"(?, {MESSAGE_PK}, ?, ?, ?)"
# SqlMessages.conversations: how many of the newest messages it reads for the latest
# conversations before it groups them all, and the counts per statement (4 parameters each).
RECENT_WINDOW = 1000
COUNTS_PER_STATEMENT = 100


class MessageStatements:
    """The fixed statements of the message repositories (messages, webhooks, send jobs),
    translated once per database, as repositories.Statements are for the others."""

    def __init__(self, db: Database) -> None:
        q = self.q = db.sql
        self.get = q(_ONE + " AND m.tenant_id = ?")
        self.get_any = q(_ONE)
        lock = " FOR UPDATE" if db.dialect == "postgresql" else ""
        self.redact_find = q(
            "SELECT pk, direction, (SELECT COUNT(*) FROM send_jobs j WHERE j.message_pk = "  # noqa: S608 - the lock clause is this module's
            "messages.pk AND j.state = 'pending') FROM messages "
            "WHERE uuid = ? AND tenant_id = COALESCE(?, tenant_id)" + lock
        )
        # With its tenant's api_key, for the audit log.
        returning = " RETURNING " + OWNER
        self.webhook_redeliver = q(REDELIVER + "pk = ?" + _CONTENT_KEPT + returning)
        self.webhook_redeliver_own = q(
            REDELIVER + "pk = ? AND tenant_id = ?" + _CONTENT_KEPT + returning
        )
        self.webhook_resend = q(
            "INSERT INTO webhooks (tenant_id, message_pk, order_key, application_id, kind, url, "  # noqa: S608 - constants
            "destination, body, state, attempts, due_at, created_at) "
            "SELECT tenant_id, message_pk, order_key, application_id, kind, url, destination, ?, "
            "'pending', 0, ?, ? FROM webhooks WHERE pk = ? "
            "AND tenant_id = COALESCE(?, tenant_id)" + _CONTENT_KEPT + " RETURNING pk, " + OWNER
        )
        # A tenant's conversations, the latest first (SqlMessages.conversations): the newest
        # messages' (ix_messages_tenant_id_pk, newest first), else every message grouped (one
        # range of ix_messages_conversation).
        self.recent = q(
            "SELECT pk, channel, account, peer FROM messages WHERE tenant_id = ? "
            "ORDER BY pk DESC LIMIT ?"
        )
        self.conversations = q(
            "SELECT channel, account, peer, COUNT(*), MAX(pk) FROM messages WHERE tenant_id = ? "
            "GROUP BY channel, account, peer ORDER BY MAX(pk) DESC LIMIT ?"
        )
        # What changed since (the web inbox's event stream): the tenant's newest message, and
        # the newest status, webhook and attempt of anyone (each the end of its primary key).
        self.activity = q(
            "SELECT (SELECT MAX(pk) FROM messages WHERE tenant_id = ?), "
            "(SELECT MAX(pk) FROM message_statuses), (SELECT MAX(pk) FROM webhooks), "
            "(SELECT MAX(pk) FROM webhook_attempts)"
        )
        lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
        # A lease taken by a process that died is `claimed_until` in the past: that try's
        # outcome is unknown (the channel may have taken the message).
        self.job_claim = q(
            "UPDATE send_jobs SET claimed_until = ?, attempts = attempts + 1, "  # noqa: S608 - the lock clause is this module's
            "first_attempt_at = COALESCE(first_attempt_at, ?), "
            "outcome_unknown = (COALESCE(claimed_until, 0) > 0) "
            "WHERE pk IN (SELECT pk FROM send_jobs WHERE state = 'pending' AND due_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY due_at LIMIT ?"
            f"{lock}) RETURNING pk, tenant_id, message_pk, attempts, first_attempt_at, "
            "outcome_unknown, failover, status_url, created_at"
        )
        self.job_due = q(
            "SELECT COUNT(*), MIN(due_at) FROM send_jobs WHERE state = 'pending' AND due_at <= ?"
        )


def _filters(tenant: int | None, query: MessageFilter) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if tenant is not None:
        where.append("tenant_id = ?")
        params.append(tenant)
    for column, value in (
        ("channel", query.channel),
        ("account", query.account),
        ("peer", query.peer),
        ("direction", query.direction),
        ("status", query.status),
        ("to_id", query.to),
        ("from_id", query.sender),
        ("message_type", query.message_type),
        ("uuid", query.uuid),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.before is not None:
        where.append("created_at < ?")
        params.append(query.before)
    if query.after is not None:
        where.append("created_at > ?")
        params.append(query.after)
    for word in query.words:
        where.append("content LIKE ? ESCAPE '!'")
        escaped = word.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params.append(f"%{escaped}%")
    return (" WHERE " + " AND ".join(where)) if where else "", params


def _record(row: Sequence[Any]) -> MessageRecord:
    return MessageRecord(
        uuid=row[3],
        direction=row[4],
        channel=row[5],
        message_type=row[6],
        to=row[7],
        sender=row[8],
        status=row[9],
        application_id=row[10],
        client_ref=row[11],
        created_at=float(row[12]),
        content=json.loads(row[13]),
    )


class SqlMessages:
    __slots__ = ("_conn", "_ops", "_sql")

    def __init__(self, conn: Connection, sql: MessageStatements, ops: list[Op]) -> None:
        self._conn = conn
        self._sql = sql
        self._ops = ops

    async def add(
        self,
        tenant: int,
        record: MessageRecord,
        *,
        root: str | None,
        webhook_url: str | None,
        workflow: dict[str, str] | None,
    ) -> None:
        values = (
            record.uuid,
            tenant,
            root,
            record.direction,
            record.channel,
            record.message_type,
            record.to,
            record.sender,
            record.status,
            record.application_id,
            record.client_ref,
            webhook_url,
            json.dumps(workflow) if workflow is not None else None,
            _encode(record.content).decode(),
            record.created_at,
            *record.conversation,
        )
        self._ops.append(Insert("messages", _COLUMNS, _ROW, values))

    async def add_status(
        self, tenant: int, message_uuid: str, change: StatusChange, *, current: bool = True
    ) -> None:
        error = json.dumps(change.error) if change.error is not None else None
        values = (tenant, message_uuid, change.status, change.at, error)
        self._ops.append(Insert("message_statuses", "tenant_id, message_pk, status, at, error",
                                _STATUS_ROW, values))  # fmt: skip
        if current:
            self._ops.append(Update("messages", "uuid", message_uuid, (("status", change.status),)))

    async def get(self, tenant: int | None, uuid: str) -> StoredMessage | None:
        if tenant is None:
            row = await self._conn.fetchone(self._sql.get_any, (uuid,))
        else:
            row = await self._conn.fetchone(self._sql.get, (uuid, tenant))
        return _stored(row) if row is not None else None

    async def get_many(self, tenant: int, uuids: list[str]) -> dict[str, StoredMessage]:
        if not uuids:
            return {}
        statement = self._sql.q(_MANY + f"IN ({placeholders(len(uuids))}) AND m.tenant_id = ?")
        rows = await self._conn.fetchall(statement, [*uuids, tenant])
        return {str(row[3]): _stored(row) for row in rows}

    async def activity(self, tenant: int) -> tuple[int, ...]:
        row = await self._conn.fetchone(self._sql.activity, (tenant,))
        return tuple(int(v or 0) for v in row) if row is not None else ()

    async def conversations(self, tenant: int, limit: int) -> list[Conversation]:
        """The tenant's `limit` latest conversations (by their newest message), each with its
        count of messages and its newest message.

        The latest conversations are the first met walking the messages newest first: when
        the newest RECENT_WINDOW messages hold `limit` of them (or are all there is), that walk
        and a count per conversation (each one range of ix_messages_conversation) answer, and
        the tenant's other messages are never read. Otherwise (fewer conversations than
        `limit` among them) every message is grouped: one pass over the tenant's range of
        ix_messages_conversation, 27 ms at 100,000 messages (docs/benchmark.md, issue 23)."""
        recent = await self._conn.fetchall(self._sql.recent, (tenant, RECENT_WINDOW))
        newest: dict[tuple[str, str, str], int] = {}
        for pk, channel, account, peer in recent:
            newest.setdefault((channel, account, peer), int(pk))
            if len(newest) >= limit:
                break
        rows: Sequence[Sequence[Any]]
        if len(newest) >= limit or len(recent) < RECENT_WINDOW:
            rows = await self._counted(tenant, newest)
        else:
            rows = await self._conn.fetchall(self._sql.conversations, (tenant, limit))
        if not rows:
            return []
        lasts = {
            int(row[0]): _record(row)
            for row in await self._conn.fetchall(
                self._sql.q(_MESSAGE + f"WHERE pk IN ({placeholders(len(rows))})"),
                [int(row[4]) for row in rows],
            )
        }
        return [
            Conversation(channel, account, peer, int(n), lasts[int(last)])
            for channel, account, peer, n, last in rows
            if int(last) in lasts
        ]

    async def _counted(
        self, tenant: int, newest: dict[tuple[str, str, str], int]
    ) -> list[tuple[Any, ...]]:
        """(channel, account, peer, messages, newest pk) of each conversation in `newest`, in
        its order: a COUNT of each one's range of ix_messages_conversation, in one statement."""
        keys = list(newest)
        counts: dict[int, int] = {}
        for start in range(0, len(keys), COUNTS_PER_STATEMENT):
            chunk = keys[start : start + COUNTS_PER_STATEMENT]
            statement = " UNION ALL ".join(
                f"SELECT {start + i}, COUNT(*) FROM messages WHERE tenant_id = ? AND "  # noqa: S608 - an index
                "channel = ? AND account = ? AND peer = ?"
                for i in range(len(chunk))
            )
            params = [value for key in chunk for value in (tenant, *key)]
            for index, n in await self._conn.fetchall(self._sql.q(statement), params):
                counts[int(index)] = int(n)
        return [(*key, counts.get(i, 0), newest[key]) for i, key in enumerate(keys)]

    async def redact(self, tenant: int | None, uuid: str, now: float) -> tuple[str, bool] | None:
        row = await self._conn.fetchone(self._sql.redact_find, (uuid, tenant))
        if row is None:
            return None
        queued = int(row[2]) > 0
        if not queued:
            await remove_content(self._conn, self._sql.q, [int(row[0])], now)
        return str(row[1]), queued

    async def page(
        self, tenant: int | None, query: MessageFilter
    ) -> tuple[int, list[MessageRecord]]:
        q = self._sql.q
        where, params = _filters(tenant, query)
        count = await self._conn.fetchone(q("SELECT COUNT(*) FROM messages" + where), params)  # noqa: S608 - the filters are this module's constants
        total = int(count[0]) if count is not None else 0
        rows = await self._conn.fetchall(
            q(_MESSAGE + where + " ORDER BY pk DESC LIMIT ? OFFSET ?"),
            [*params, query.size, (query.number - 1) * query.size],
        )
        if not rows:
            return total, []
        pks = [int(row[0]) for row in rows]
        marks = placeholders(len(pks))
        statuses: dict[int, list[StatusRecord]] = {pk: [] for pk in pks}
        for pk, status, at, error in await self._conn.fetchall(
            q(
                "SELECT message_pk, status, at, error FROM message_statuses "  # noqa: S608
                f"WHERE message_pk IN ({marks}) ORDER BY pk"
            ),
            pks,
        ):
            statuses[int(pk)].append(
                StatusRecord(status, float(at), json.loads(error) if error else None)
            )
        hooks = await webhook_records(self._conn, q, f"w.message_pk IN ({marks})", pks)
        by_message: dict[str, list[WebhookRecord]] = {}
        for hook in hooks:
            by_message.setdefault(hook.message_uuid, []).append(hook)
        items = [
            msgspec.structs.replace(
                _record(row),
                statuses=statuses[int(row[0])],
                webhooks=by_message.get(row[3], []),
            )
            for row in rows
        ]
        return total, items


def _stored(row: Sequence[Any]) -> StoredMessage:
    """A row of _ONE."""
    return StoredMessage(
        pk=int(row[0]),
        root=row[1],
        tenant_id=int(row[2]),
        record=_record(row),
        webhook_url=row[14],
        workflow=json.loads(row[15]) if row[15] is not None else None,
        job=row[16],
    )
