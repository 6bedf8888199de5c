"""Nothing waits on PostgreSQL while holding the event loop: a request that PostgreSQL keeps
waiting (here, on a row another session has locked) leaves the other requests of its process
answered meanwhile. One event loop serves both requests, as in a server process."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import Settings
from tests.conftest import TenantCreds

from .helpers import EA, new_messenger


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_request_waiting_on_postgresql_does_not_hold_up_the_others(
    settings: Settings, engine: Engine, alice: TenantCreds, client: TestClient
) -> None:
    assert engine.dialect.name == "postgresql"
    new_messenger(client, alice, "locked")
    new_messenger(client, alice, "free")

    async def scenario() -> tuple[list[int], int]:
        app = create_app(settings, engine=engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            with engine.connect() as blocker:
                blocker.execute(
                    text("SELECT 1 FROM accounts WHERE external_id = 'locked' FOR UPDATE")
                )  # held until the rollback below
                patch = asyncio.create_task(
                    c.patch(f"{EA}/messenger/locked", json={"name": "n"}, headers=alice.headers)
                )
                reads = []
                for _ in range(5):  # answered while the patch waits on the lock
                    r = await asyncio.wait_for(
                        c.get(f"{EA}/messenger/free", headers=alice.headers), timeout=10
                    )
                    reads.append(r.status_code)
                assert not patch.done()
                blocker.rollback()
            patched = await asyncio.wait_for(patch, timeout=10)
        return reads, patched.status_code

    reads, patched = asyncio.run(scenario())
    assert reads == [200] * 5
    assert patched == 200
    r = client.get(f"{EA}/messenger/locked", headers=alice.headers)
    assert r.json()["name"] == "n"
