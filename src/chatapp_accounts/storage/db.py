"""Connections for the repositories' plain SQL, one interface on both databases: a unit of work
acquires a `Connection`, awaits its statements, and releases it.

- **SQLite**: one long-lived connection per thread (a server process serves from its event
  loop's thread, so one connection serves every request). Its statements take microseconds on a
  local file, so they run inline: awaiting one never suspends, and a use case runs from its
  first statement to its commit in one step of the event loop. That is also why one connection
  can serve every request: no two units of work are ever open on it at once (checked).
- **PostgreSQL**: psycopg's asyncio connections from a psycopg_pool pool, on the event loop.
  Every statement is a round trip to another host; while a unit of work waits for one, the loop
  serves other requests. Connections are in autocommit: a write unit of work sends BEGIN and
  COMMIT itself, a read runs its statements alone (each sees a consistent snapshot).

A connection that fails (server gone, connection broken) is dropped; the next unit of work gets a
new one, so the server recovers by itself when the database comes back. Statements are prepared
once by the drivers (sqlite3's statement cache; psycopg prepares a query after a few runs).
SQLAlchemy still makes the SQLite connections (its connect hooks set the pragmas), runs the
migrations and describes the schema in tables.py.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine

Row = tuple[Any, ...]


class Connection(Protocol):
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """The statement's row count."""

    async def begin(self) -> None:
        """Start a transaction: a write one (SQLite takes its write lock now)."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class Database(Protocol):
    dialect: str
    engine: Engine  # SQLAlchemy's, for migrations and operator commands
    IntegrityError: type[Exception]

    def sql(self, statement: str) -> str:
        """A statement written with `?` placeholders, in the driver's own."""

    async def acquire(self) -> Connection:
        """A connection; raises ConnectionUnavailable when none can be had."""

    async def release(self, conn: Connection, *, broken: bool = False) -> None: ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """A failure of the connection or the server, not of the statement."""

    async def close(self) -> None: ...


class ConnectionUnavailable(Exception):
    """No connection to the database could be had (the storage layer answers 503 for it)."""


class SqliteConnection:
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.raw.execute(sql, params).fetchone()
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self.raw.execute(sql, params).fetchall()
        return rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.raw.execute(sql, params).rowcount)

    async def begin(self) -> None:
        # The write lock up front: a read-then-write transaction never fails half-way with
        # "database is locked".
        self.raw.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        self.raw.execute("COMMIT")

    async def rollback(self) -> None:
        self.raw.execute("ROLLBACK")


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, engine: Engine, on_connections: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self._on_connections = on_connections
        dbapi: Any = engine.dialect.dbapi
        self.IntegrityError: type[Exception] = dbapi.IntegrityError
        self._OperationalError: type[Exception] = dbapi.OperationalError
        self._local = threading.local()
        self._all: list[SqliteConnection] = []
        self._lock = threading.Lock()

    def sql(self, statement: str) -> str:
        return statement

    async def acquire(self) -> Connection:
        conn: SqliteConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                proxied = self.engine.raw_connection()
            except Exception as exc:
                raise ConnectionUnavailable(str(exc)) from exc
            proxied.detach()  # ours for the thread's lifetime, not the engine pool's
            conn = self._local.conn = SqliteConnection(proxied.dbapi_connection)
            self._count(conn, add=True)
        if conn.raw.in_transaction:
            raise RuntimeError("a unit of work is already open on this thread's connection")
        return conn

    async def release(self, conn: Connection, *, broken: bool = False) -> None:
        if broken:
            assert isinstance(conn, SqliteConnection)
            self._local.conn = None
            self._count(conn, add=False)
            _close(conn.raw)

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, self._OperationalError) and (
            "disk I/O" in str(exc) or "unable to open" in str(exc)
        )

    def _count(self, conn: SqliteConnection, *, add: bool) -> None:
        with self._lock:
            if add:
                self._all.append(conn)
            elif conn in self._all:
                self._all.remove(conn)
            count = len(self._all)
        if self._on_connections is not None:
            self._on_connections(count)

    async def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            _close(conn.raw)
        self._local = threading.local()
        self.engine.dispose()


class PostgresConnection:
    """One per pooled connection, with one cursor for all its statements (a cursor is a fifth
    of a statement's cost to make). BEGIN is not a round trip of its own: it goes out with the
    transaction's first statement, in one flush (psycopg's pipeline mode). COMMIT is one."""

    __slots__ = ("__weakref__", "_begin", "_control", "_cursor", "_open", "raw")

    def __init__(self, raw: psycopg.AsyncConnection[Any]) -> None:
        self.raw = raw
        self._cursor = raw.cursor()
        self._control = raw.cursor()  # BEGIN, COMMIT, ROLLBACK
        self._begin = False  # BEGIN is due with the next statement
        self._open = False  # BEGIN was sent

    async def _run(self, sql: str, params: Sequence[Any]) -> psycopg.AsyncCursor[Any]:
        cursor = self._cursor
        if not self._begin:
            return await cursor.execute(sql, params)
        self._begin = False
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

    async def _end(self, statement: str) -> None:
        self._begin = False  # a transaction that ran no statement has nothing to end
        if self._open:
            self._open = False
            await self._control.execute(statement)


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
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool = AsyncConnectionPool(
            conninfo,
            kwargs={"autocommit": True, "connect_timeout": 5},  # never hang on a dead host
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            name="chatapp",
        )
        self._opened = False
        self._wrapped: weakref.WeakKeyDictionary[
            psycopg.AsyncConnection[Any], PostgresConnection
        ] = weakref.WeakKeyDictionary()

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    async def acquire(self) -> Connection:
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
            conn = self._wrapped[raw] = PostgresConnection(raw)
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


def open_database(
    engine: Engine,
    *,
    pool_size: int = 8,
    pool_timeout: float = 5.0,
    on_connections: Callable[[int], None] | None = None,
) -> SqliteDatabase | PostgresDatabase:
    if engine.dialect.name == "postgresql":
        return PostgresDatabase(
            engine, size=pool_size, timeout=pool_timeout, on_connections=on_connections
        )
    return SqliteDatabase(engine, on_connections)


def _close(raw: Any) -> None:
    try:
        raw.close()
    except Exception:  # noqa: BLE001, S110 - it is broken already, or we are shutting down
        pass
