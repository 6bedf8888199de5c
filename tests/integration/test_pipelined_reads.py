"""The pipelined reads on PostgreSQL (storage/pipeline.py): many requests' reads in one pipeline,
each given its own row; one statement's failure confined to it; a lost, refused or hung
connection answered with ServiceUnavailable, then recovered from without a restart."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from chatapp_accounts.domain import accounts
from chatapp_accounts.domain.errors import AccountNotFound, NotAuthenticated, ServiceUnavailable
from chatapp_accounts.domain.models import Account, Provider
from chatapp_accounts.security.tokens import TokenCipher
from chatapp_accounts.storage.db import Database
from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.pipeline import PipelinedReads
from chatapp_accounts.storage.reads import InlineAccountReads, PipelinedAccountReads, numbered
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, _truncate, make_tenant

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_shared_url: str) -> str:
    _truncate(pg_shared_url)
    return pg_shared_url


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(make_engine(pg_url))
    yield database
    database.close()


def test_numbered_placeholders() -> None:
    assert numbered("SELECT %s, %s WHERE x = %s") == "SELECT $1, $2 WHERE x = $3"


def test_reads_of_one_turn_share_a_pipeline_and_each_gets_its_row(db: Database) -> None:
    pipeline = PipelinedReads(db.new_connection)

    async def main() -> list[Any]:
        first = await asyncio.gather(
            *(pipeline.fetchone("SELECT $1::int * 2, $2", (str(i), f"v{i}")) for i in range(50))
        )
        second = await pipeline.fetchone("SELECT 1 WHERE $1 = 'never'", ("x",))
        return [*first, second]

    try:
        rows = asyncio.run(main())
    finally:
        pipeline.close()
    assert rows[:50] == [(i * 2, f"v{i}") for i in range(50)]
    assert rows[50] is None  # no row
    assert (pipeline.pipelines, pipeline.reads) == (2, 51)


def test_a_failing_statement_fails_alone(db: Database) -> None:
    pipeline = PipelinedReads(db.new_connection)

    async def main() -> list[Any]:
        calls = [pipeline.fetchone("SELECT $1::int", (str(i),)) for i in range(3)]
        calls.insert(1, pipeline.fetchone("SELECT 1 / $1::int", ("0",)))
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        before, failed, *after = asyncio.run(main())
    finally:
        pipeline.close()
    assert before == (0,)
    assert isinstance(failed, psycopg.DatabaseError) and "division by zero" in str(failed)
    assert after == [(1,), (2,)]  # aborted with the failure's pipeline, then sent again


def test_lost_connection_fails_waiting_reads_then_reconnects(db: Database) -> None:
    pipeline = PipelinedReads(db.new_connection)
    killer = db.new_connection()

    async def main() -> tuple[Any, list[Any], Any]:
        first = await pipeline.fetchone("SELECT pg_backend_pid()", ())
        assert first is not None
        # The server ends the connection while a read is out.
        slow = asyncio.ensure_future(pipeline.fetchone("SELECT pg_sleep(5)", ()))
        await asyncio.sleep(0.2)
        killer.execute("SELECT pg_terminate_backend(%s)", (first[0],))
        failures = await asyncio.gather(slow, return_exceptions=True)
        again = await pipeline.fetchone("SELECT pg_backend_pid()", ())
        return first, failures, again

    try:
        first, failures, again = asyncio.run(main())
    finally:
        pipeline.close()
        killer.close()
    assert isinstance(failures[0], ServiceUnavailable)
    assert again is not None and again[0] != first[0]  # a new connection, without a restart


def test_unreachable_server_is_service_unavailable() -> None:
    def refuse() -> psycopg.Connection[Any]:
        raise psycopg.OperationalError("connection refused")

    pipeline = PipelinedReads(refuse)

    async def main() -> None:
        await pipeline.fetchone("SELECT 1", ())

    with pytest.raises(ServiceUnavailable):
        asyncio.run(main())


class SilentProxy:
    """Forwards to PostgreSQL until `silence()`; then swallows every byte, both ways, and
    closes nothing: a stuck server or network, as the client sees it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.silent:
                    dst.sendall(data)
        except OSError:
            pass

    def silence(self) -> None:
        self.silent = True

    def close(self) -> None:
        self.listener.close()
        for s in self.sockets:
            s.close()


def test_a_hung_server_is_service_unavailable_after_the_timeout(pg_url: str) -> None:
    url = make_url(pg_url)
    proxy = SilentProxy((url.host or "127.0.0.1", url.port or 5432))
    conninfo = f"host=127.0.0.1 port={proxy.port} user={url.username} dbname={url.database}"
    pipeline = PipelinedReads(lambda: psycopg.connect(conninfo), timeout=0.5)

    async def main() -> tuple[Any, list[Any]]:
        first = await pipeline.fetchone("SELECT 1", ())
        proxy.silence()
        return first, await asyncio.gather(
            asyncio.wait_for(pipeline.fetchone("SELECT 2", ()), 10), return_exceptions=True
        )

    try:
        first, (hung,) = asyncio.run(main())
    finally:
        pipeline.close()
        proxy.close()
    assert first == (1,)
    assert isinstance(hung, ServiceUnavailable)  # after 0.5 s, not never


def test_a_cancelled_read_leaves_the_others_in_order(db: Database) -> None:
    pipeline = PipelinedReads(db.new_connection)

    async def main() -> list[Any]:
        tasks = [
            asyncio.ensure_future(pipeline.fetchone("SELECT $1::int", (str(i),))) for i in range(5)
        ]
        await asyncio.sleep(0)  # queued and sent
        tasks[2].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        pipeline.close()
    assert [results[i] for i in (0, 1, 3, 4)] == [(0,), (1,), (3,), (4,)]
    assert isinstance(results[2], asyncio.CancelledError)


@pytest.fixture
def factory(db: Database, encryption_key: str) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(db, TokenCipher.from_texts([encryption_key]))


def test_the_hot_use_case_reads_what_was_committed(
    factory: SqlUnitOfWorkFactory, db: Database
) -> None:
    alice: TenantCreds = make_tenant(factory)
    reads = PipelinedAccountReads(PipelinedReads(db.new_connection), factory.sql, factory.cipher)
    accounts.create_messenger_account(
        factory, alice.tenant, external_id="page-1", access_token="tok", name="n"
    )

    async def main() -> list[Any]:
        return await asyncio.gather(
            accounts.get_account_with_basic_auth(
                reads, alice.api_key, alice.api_secret, Provider.MESSENGER, "page-1"
            ),
            accounts.get_account_with_basic_auth(
                reads, alice.api_key, alice.api_secret, Provider.MESSENGER, "page-2"
            ),
            accounts.get_account_with_basic_auth(
                reads, alice.api_key, "wrong", Provider.MESSENGER, "page-1"
            ),
            return_exceptions=True,
        )

    try:
        found, missing, refused = asyncio.run(main())
    finally:
        reads.close()
    assert found == Account(Provider.MESSENGER, "page-1", alice.api_key, "n", "tok")
    assert isinstance(missing, AccountNotFound)
    assert isinstance(refused, NotAuthenticated)


def test_fetchall_gives_every_row_beside_single_rows(db: Database) -> None:
    pipeline = PipelinedReads(db.new_connection)

    async def main() -> list[Any]:
        return await asyncio.gather(
            pipeline.fetchall("SELECT g, g::text FROM generate_series(1, $1::int) g", ("3",)),
            pipeline.fetchone("SELECT $1::int", ("7",)),
            pipeline.fetchall("SELECT 1 WHERE $1 = 'never'", ("x",)),
        )

    try:
        rows = asyncio.run(main())
    finally:
        pipeline.close()
    assert rows == [[(1, "1"), (2, "2"), (3, "3")], (7,), []]
    assert (pipeline.pipelines, pipeline.reads) == (1, 3)


def test_the_list_reads_the_same_pages_as_the_repository(
    factory: SqlUnitOfWorkFactory, db: Database
) -> None:
    """The list's count and page, pipelined: every page of every filter as the repository reads
    it on the unit of work's connection, the lists of one turn in one pipeline per step."""
    alice: TenantCreds = make_tenant(factory)
    for i in range(7):
        accounts.create_messenger_account(
            factory, alice.tenant, external_id=f"page-{i}", access_token=f"tok-{i}", name=f"n{i}"
        )
        accounts.provision_account(
            factory, api_key=alice.api_key, provider=Provider.VIBER_SERVICE_MSG,
            external_id=f"viber-{i}",
        )  # fmt: skip
    pipelined = PipelinedAccountReads(
        PipelinedReads(db.new_connection), factory.sql, factory.cipher
    )
    inline = InlineAccountReads(factory)
    asks = [
        (provider, number, size)
        for provider in (None, Provider.MESSENGER, Provider.VIBER_SERVICE_MSG)
        for size in (3, 5)
        for number in range(1, 7)
    ]

    async def lists(reads: Any, secret: str) -> list[Any]:
        return await asyncio.gather(
            *(
                accounts.list_accounts_with_basic_auth(
                    reads, alice.api_key, secret, provider=p, page_number=n, page_size=s
                )
                for p, n, s in asks
            ),
            *(
                accounts.list_accounts(reads, alice.tenant, provider=p, page_number=n, page_size=s)
                for p, n, s in asks
            ),
            return_exceptions=True,
        )

    pipeline = pipelined._pipeline
    try:
        got = asyncio.run(lists(pipelined, alice.api_secret))
        pipelines, reads = pipeline.pipelines, pipeline.reads
        refused = asyncio.run(lists(pipelined, "wrong"))
    finally:
        pipelined.close()
    assert got == asyncio.run(lists(inline, alice.api_secret))
    # a count for every list, a page for those not past the end: the counts sent together, the
    # pages as the counts come back
    assert reads == len(got) + sum(p.page_number <= p.total_pages for p in got)
    assert 2 <= pipelines <= 4
    first = got[0]
    assert [a.external_id for a in first.items] == ["page-0", "viber-0", "page-1"]
    assert first.items[0].access_token == "tok-0" and first.items[1].access_token is None
    assert (first.total_items, first.total_pages) == (14, 5)
    last = got[asks.index((None, 5, 3))]  # past the middle: read from the end
    assert [a.external_id for a in last.items] == ["page-6", "viber-6"]
    assert got[asks.index((Provider.MESSENGER, 6, 3))].items == []  # past the end
    assert all(isinstance(r, NotAuthenticated) for r in refused[: len(asks)])


def test_inline_reads_lose_their_connection_then_reconnect(
    factory: SqlUnitOfWorkFactory, db: Database
) -> None:
    """The reads SQLite uses run without a unit of work; a lost connection is still a 503, and
    the next read reconnects. Shown on PostgreSQL, where a connection can be taken away."""
    alice: TenantCreds = make_tenant(factory)
    reads = InlineAccountReads(factory)
    killer = db.new_connection()

    def read() -> Any:
        return asyncio.run(reads.count_with_credentials(alice.api_key, None))

    try:
        before = read()
        pid = db.connection().info.backend_pid
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(ServiceUnavailable):
            read()
        after = read()
    finally:
        killer.close()
    assert before == after and before[1] == 0 and before[0].api_key == alice.api_key
    assert db.connection().info.backend_pid != pid
