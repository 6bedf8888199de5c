"""Content removal (docs/messages.md, "Retention"): what a message said is removed, what
happened to it is kept.

Removed, for each message: its content (a marker `{"redacted": true}` in its place; the
message type is a column of its own), its webhooks' bodies (the same marker: what was sent
and signed), its attempts' stored requests and answers (the web inbox's), its send job's
failover list (the following messages' content) and client_ref. Pending webhooks of it are
failed (their body is gone). A message still queued (its send job pending: the channel has not
taken it yet) keeps its content until the job ends.

Kept: uuids, channel, direction, ids of the account and the customer, statuses with their
times and errors, webhook states and attempts' times, codes and errors: the statistics.

Both callers go through `remove_content`: the retention's batches (Outbox.remove_content, a
few hundred messages a transaction) and the Redact API (one message)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .db import Connection, placeholders

REDACTED = '{"redacted":true}'
REDACTED_BYTES = REDACTED.encode()


async def remove_content(
    conn: Connection, q: Callable[[str], str], pks: Sequence[int], now: float
) -> int:
    """Remove the content of these messages (pks) and of what is stored of their webhooks;
    how many messages changed. In the caller's transaction."""
    if not pks:
        return 0
    marks = placeholders(len(pks))
    params = list(pks)
    changed = await conn.execute(
        q(
            "UPDATE messages SET content = ?, client_ref = NULL, content_removed_at = ? "  # noqa: S608 - placeholders
            f"WHERE pk IN ({marks}) AND content_removed_at IS NULL"
        ),
        [REDACTED, now, *params],
    )
    await conn.execute(
        q(
            "UPDATE webhook_attempts SET request_headers = NULL, answer = NULL "  # noqa: S608
            f"WHERE webhook_pk IN (SELECT pk FROM webhooks WHERE message_pk IN ({marks})) "
            "AND (request_headers IS NOT NULL OR answer IS NOT NULL)"
        ),
        params,
    )
    await conn.execute(
        q(
            "UPDATE webhooks SET body = ?, state = CASE WHEN state = 'pending' THEN 'failed' "  # noqa: S608
            f"ELSE state END, claimed_until = NULL WHERE message_pk IN ({marks})"
        ),
        [REDACTED_BYTES, *params],
    )
    await conn.execute(
        q(
            "UPDATE send_jobs SET failover = NULL "  # noqa: S608
            f"WHERE message_pk IN ({marks}) AND failover IS NOT NULL"
        ),
        params,
    )
    return changed


class ContentRemoval:
    """The retention's side: the oldest messages whose content is due, a batch at a time."""

    def __init__(self, q: Callable[[str], str], postgresql: bool) -> None:
        self._q = q
        lock = " FOR UPDATE SKIP LOCKED" if postgresql else ""
        self._due = q(
            "SELECT pk FROM messages m WHERE content_removed_at IS NULL AND created_at < ? "  # noqa: S608 - the lock clause is this module's
            "AND NOT EXISTS (SELECT 1 FROM send_jobs j WHERE j.message_pk = m.pk "
            f"AND j.state = 'pending') ORDER BY created_at LIMIT ?{lock}"
        )

    async def batch(self, conn: Connection, before: float, limit: int, now: float) -> int:
        """Remove the content of up to `limit` messages made before `before`; how many."""
        pks = [int(row[0]) for row in await conn.fetchall(self._due, (before, limit))]
        return await remove_content(conn, self._q, pks, now)
