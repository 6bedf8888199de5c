"""A tenant's latest conversations (SqlMessages.conversations, the inbox's sidebar), on both
databases: whether the newest messages hold enough of them (a count per conversation) or not
(every message grouped), the answer is the same: the latest first, each with its count of
messages and its newest message, other tenants' left out."""

from __future__ import annotations

import uuid

import pytest

from chatapp_accounts.domain.models import MessageRecord
from chatapp_accounts.storage import messages as storage
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import sync

# (channel, account, customer) of each message, oldest first: uneven threads, interleaved.
THREADS = [("whatsapp", "447700900000", f"4477009001{i:02d}") for i in range(6)] + [
    ("messenger", "107000000000001", "7000000000000001"),
    ("viber_service", "447700900002", "447700900100"),
]
ORDER = [0] * 12 + [1, 2, 0, 3, 4, 0, 5, 6, 7, 1, 0, 0, 2, 6]


def _record(direction: str, channel: str, account: str, peer: str, n: int) -> MessageRecord:
    to, sender = (peer, account) if direction == "outbound" else (account, peer)
    return MessageRecord(
        uuid=str(uuid.uuid4()), direction=direction, channel=channel, message_type="text",
        to=to, sender=sender, status=None, application_id="app", client_ref=None,
        created_at=float(n), content={"text": f"message {n}"},
    )  # fmt: skip


def _expected(made: list[tuple[int, MessageRecord]]) -> list[tuple[str, str, str, int, str]]:
    """(channel, account, customer, messages, newest uuid), the latest conversation first."""
    threads: dict[tuple[str, str, str], list[MessageRecord]] = {}
    for _, record in reversed(made):  # newest first
        threads.setdefault((record.channel, *record.conversation), []).append(record)
    return [(*key, len(rs), rs[0].uuid) for key, rs in threads.items()]


@pytest.mark.parametrize(
    ("window", "per_statement", "limit"),
    [
        (1000, 100, 100),  # the newest 1,000 are every message: counted
        (6, 2, 3),  # 3 conversations among the newest 6: counted, 2 a statement
        (6, 100, 8),  # fewer than 8 among the newest 6: grouped
        (11, 100, 8),  # exactly 8 among the newest 11: counted
        (3, 100, 2),
    ],
)
def test_latest_conversations_counted_or_grouped_agree(
    uow_factory: SqlUnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
    window: int,
    per_statement: int,
    limit: int,
) -> None:
    monkeypatch.setattr(storage, "RECENT_WINDOW", window)
    monkeypatch.setattr(storage, "COUNTS_PER_STATEMENT", per_statement)

    async def scenario() -> None:
        async with uow_factory(write=True) as uow:
            mine = await uow.tenants.add(uuid.uuid4().hex[:8], "hash", "secret")
            other = await uow.tenants.add(uuid.uuid4().hex[:8], "hash", "secret")
            await uow.commit()
        made: list[tuple[int, MessageRecord]] = []
        for n, thread in enumerate(ORDER):
            async with uow_factory(write=True) as uow:
                record = _record("outbound" if n % 3 else "inbound", *THREADS[thread], n)
                await uow.messages.add(mine, record, root=None, webhook_url=None, workflow=None)
                # Another tenant's, in the same conversation: never counted.
                theirs = _record("inbound", *THREADS[thread], n)
                await uow.messages.add(other, theirs, root=None, webhook_url=None, workflow=None)
                await uow.commit()
            made.append((n, record))
        async with uow_factory() as uow:
            found = await uow.messages.conversations(mine, limit)
            nothing = await uow.messages.conversations(mine + other + 1, limit)
        got = [(c.channel, c.account, c.peer, c.messages, c.last.uuid) for c in found]
        assert got == _expected(made)[:limit]
        assert nothing == []

    sync(scenario())
