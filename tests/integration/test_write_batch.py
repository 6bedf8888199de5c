"""The write batch (storage/batch.py), on both databases: the message rows of the units that
commit in one turn of the event loop are written together, in one transaction and a few
multi-row statements; each unit's commit() returns once they are committed; a unit whose rows
fail fails alone, the others' are written."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from chatapp_accounts.domain.models import MessageRecord, StatusChange
from chatapp_accounts.storage import batch
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import sync


def _record(tenant: int) -> MessageRecord:
    return MessageRecord(
        uuid=str(uuid.uuid4()), direction="inbound", channel="whatsapp", message_type="text",
        to="447700900000", sender="447700900123", status=None, application_id="app",
        client_ref=None, created_at=1.0, content={"text": "hi"},
    )  # fmt: skip


async def _tenant(uow_factory: SqlUnitOfWorkFactory) -> int:
    async with uow_factory(write=True) as uow:
        tenant = await uow.tenants.add(uuid.uuid4().hex[:8], "hash", "secret")
        await uow.commit()
    return tenant


def _spy(monkeypatch: pytest.MonkeyPatch, uow_factory: SqlUnitOfWorkFactory) -> list[list[str]]:
    """The statements of each batch written (each list: one transaction)."""
    batches: list[list[str]] = []
    real = uow_factory.batch._write

    async def spying(ops: Any) -> None:
        batches.append([text for text, _ in batch.statements(ops, uow_factory.db.sql)])
        await real(ops)

    monkeypatch.setattr(uow_factory.batch, "_write", spying)
    return batches


async def _count(uow_factory: SqlUnitOfWorkFactory, table: str) -> int:
    async with uow_factory() as uow:
        row = await uow.conn.fetchone(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])


def test_units_of_one_turn_are_one_batch_of_multi_row_statements(
    uow_factory: SqlUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        tenant = await _tenant(uow_factory)
        batches = _spy(monkeypatch, uow_factory)

        async def unit() -> str:
            record = _record(tenant)
            async with uow_factory() as uow:
                await uow.messages.add(tenant, record, root=None, webhook_url=None, workflow=None)
                await uow.messages.add_status(tenant, record.uuid, StatusChange("read", 2.0))
                await uow.webhooks.add(tenant, record.uuid, record.uuid, "app", "inbound",
                                       "http://127.0.0.1:9/in", {"a": 1}, 2.0)  # fmt: skip
                await uow.commit()
            # Committed when commit() returns: another unit of work reads it.
            async with uow_factory() as uow:
                found = await uow.messages.get(tenant, record.uuid)
            assert found is not None and found.record.status == "read"
            assert found.root == record.uuid
            return record.uuid

        done = await asyncio.gather(*(unit() for _ in range(150)))
        assert len(set(done)) == 150
        # 150 units, one batch (maybe two: one starts while the first is written): each table's
        # rows a hundred a statement, the statuses set by one UPDATE ... CASE per hundred.
        assert 1 <= len(batches) <= 2, [len(b) for b in batches]
        statements = [s for b in batches for s in b]
        inserts = [s for s in statements if s.startswith("INSERT INTO messages")]
        assert len(inserts) <= 3 and inserts[0].count("), (") >= 49
        assert sum(s.startswith("UPDATE messages") for s in statements) <= 3
        assert await _count(uow_factory, "messages") == 150
        assert await _count(uow_factory, "message_statuses") == 150
        assert await _count(uow_factory, "webhooks") == 150

    sync(scenario())


def test_a_unit_whose_rows_fail_fails_alone(uow_factory: SqlUnitOfWorkFactory) -> None:
    async def scenario() -> list[BaseException | None]:
        tenant = await _tenant(uow_factory)

        async def unit(bad: bool) -> None:
            record = _record(tenant)
            async with uow_factory() as uow:
                await uow.messages.add(tenant, record, root=None, webhook_url=None, workflow=None)
                # A status of a message that does not exist: its message_pk is NULL.
                target = str(uuid.uuid4()) if bad else record.uuid
                await uow.messages.add_status(
                    tenant, target, StatusChange("read", 2.0), current=False
                )
                await uow.commit()

        return await asyncio.gather(unit(False), unit(True), unit(False), return_exceptions=True)

    outcomes = sync(scenario())
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], uow_factory.db.IntegrityError)
    assert sync(_count(uow_factory, "messages")) == 2  # the failed unit's message is not there
    assert sync(_count(uow_factory, "message_statuses")) == 2
