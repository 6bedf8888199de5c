"""PostgreSQL for the repositories (db.py's interface): psycopg's asyncio connections from a
psycopg_pool pool, on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine

from .db import Connection, ConnectionUnavailable, Row, StatementCount
from .engine import CONNECT_TIMEOUT, STATEMENTS_KEPT


class PostgresConnection:
    """One per pooled connection, with one cursor for all its statements (a cursor is a fifth
    of a statement's cost to make). BEGIN is not a round trip of its own: it goes out with the
    transaction's first statement, in one flush (psycopg's pipeline mode). COMMIT is one."""

    __slots__ = ("_begin", "_control", "_count", "_cursor", "_open", "raw", "repositories")

    def __init__(self, raw: psycopg.AsyncConnection[Any], count: StatementCount) -> None:
        self.raw = raw
        self._count = count
        self.repositories: object = None
        self._cursor = raw.cursor()
        self._control = raw.cursor()  # BEGIN, COMMIT, ROLLBACK
        self._begin = False  # BEGIN is due with the next statement
        self._open = False  # BEGIN was sent

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Any]:
        cursor = self._cursor
        if not self._begin:
            self._count.statements += 1
            return await cursor.execute(sql, params)
        self._begin = False
        self._count.statements += 2
        async with self.raw.pipeline():
            self._open = True
            await self._control.execute("BEGIN")
            await cursor.execute(sql, params)
        return cursor

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await (await self._run(sql, params)).fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await (await self._run(sql, params)).fetchall()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return (await self._run(sql, params)).rowcount

    def reset(self) -> None:
        """Lent again: no transaction of ours is open on it (the pool ended any)."""
        self._begin = self._open = False

    async def begin(self) -> None:
        self._begin = True

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def write_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """BEGIN, the statements and COMMIT in one pipeline: one round trip. Not prepared: a
        batch's statements come in hundreds of shapes (rows per statement), which would push
        the request path's prepared statements out of the connection's cache and make psycopg
        deallocate and prepare again and again."""
        self._begin = False
        self._open = True
        self._count.statements += len(statements) + 2
        try:
            async with self.raw.pipeline():
                await self._control.execute("BEGIN")
                for sql, params in statements:
                    await self._cursor.execute(sql, params, prepare=False)
                await self._control.execute("COMMIT")
        except BaseException:
            if not self.raw.closed and not self.raw.broken:
                await self._control.execute("ROLLBACK")
            raise
        finally:
            self._open = False

    async def _end(self, statement: str) -> None:
        self._begin = False  # a transaction that ran no statement has nothing to end
        if self._open:
            self._open = False
            self._count.statements += 1
            await self._control.execute(statement)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.prepared_max = STATEMENTS_KEPT


class PostgresDatabase:
    """A pool of `size` connections at most, opened by the first unit of work (in the event loop
    that serves it); a unit of work waits up to `timeout` seconds for one."""

    dialect = "postgresql"
    IntegrityError: type[Exception] = psycopg.IntegrityError

    def __init__(
        self,
        engine: Engine,
        *,
        size: int,
        timeout: float,
        on_connections: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self._on_connections = on_connections
        self.count = StatementCount()
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conninfo = conninfo  # for a connection of its own (storage/listen.py)
        self._pool = AsyncConnectionPool(
            conninfo,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            configure=_configure,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            name="chatapp",
        )
        self._opened = False
        # The wrapper of each connection the pool has lent; those it has closed since are
        # dropped whenever it lends a new one, so this holds the pool's connections only.
        self._wrapped: dict[psycopg.AsyncConnection[Any], PostgresConnection] = {}

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    async def acquire(self, *, write: bool = False) -> Connection:
        try:
            if not self._opened:
                await self._pool.open()  # safe to call again; bound to this event loop
                self._opened = True
            raw = await self._pool.getconn()
        except PoolTimeout as exc:
            raise ConnectionUnavailable(str(exc)) from exc
        conn = self._wrapped.get(raw)
        if conn is not None:
            conn.reset()
        else:
            for closed in [c for c in self._wrapped if c.closed]:
                del self._wrapped[closed]
            conn = self._wrapped[raw] = PostgresConnection(raw, self.count)
            if self._on_connections is not None:
                self._on_connections(self._pool.get_stats()["pool_size"])
        return conn

    async def release(self, conn: Connection, *, broken: bool = False) -> None:
        assert isinstance(conn, PostgresConnection)
        if broken:
            await conn.raw.close()  # the pool drops a closed connection and makes another
        await self._pool.putconn(conn.raw)
        if broken and self._on_connections is not None:
            self._on_connections(self._pool.get_stats()["pool_size"])

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
        self.engine.dispose()
