"""Wake-ups across processes on PostgreSQL (storage/listen.py): a batch that writes send jobs
NOTIFYs, and another process's listener wakes its sender at once; a stop while the listener
waits ends promptly (a cancelled wait once held psycopg's connection lock and hung shutdown)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from chatapp_accounts.domain.models import MessageRecord
from chatapp_accounts.storage.listen import Listener
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import sync

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]


def test_a_batch_that_writes_jobs_wakes_another_processs_listener(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    conninfo = getattr(uow_factory.db, "conninfo", None)
    assert conninfo is not None

    async def scenario() -> tuple[list[str], float]:
        woken: list[str] = []
        listener = Listener(conninfo, {"chatapp_send_jobs": lambda: woken.append("jobs"),
                                       "chatapp_webhooks": lambda: woken.append("hooks")})  # fmt: skip
        listener.start()
        await asyncio.sleep(0.5)  # LISTEN is under way
        async with uow_factory(write=True) as uow:
            tenant = await uow.tenants.add(uuid.uuid4().hex[:8], "hash", "secret")
            await uow.commit()
        record = MessageRecord(
            uuid=str(uuid.uuid4()), direction="outbound", channel="rcs", message_type="text",
            to="447700900123", sender="agent", status=None, application_id="app",
            client_ref=None, created_at=1.0, content={"text": "hi"},
        )  # fmt: skip
        async with uow_factory() as uow:  # as POST /v1/messages writes, through the batch
            await uow.messages.add(tenant, record, root=None, webhook_url=None, workflow=None)
            await uow.jobs.add(tenant, record.uuid, None, [], 1.0)
            await uow.commit()
        deadline = time.monotonic() + 5
        while "jobs" not in woken and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await listener.stop()  # while it waits for the next notification
        return woken, time.monotonic() - started

    woken, stop_seconds = sync(scenario())
    assert woken == ["jobs"]  # a batch without webhooks does not wake the dispatchers
    assert stop_seconds < 3
