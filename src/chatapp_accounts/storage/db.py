"""Connections for the repositories' plain SQL, one interface on both databases: a unit of work
acquires a `Connection`, awaits its statements, and releases it.

- **SQLite**: two long-lived connections per thread, one for reads and one for writes (a
  server process serves from its event loop's thread, so they serve every request). Statements
  take microseconds on a local file, so they run inline: awaiting one never suspends, and a
  write unit of work runs from its first statement to its commit in one step of the event loop.
  That is also why one writer can serve every request: no two write units of work are ever open
  on it at once (checked). Writes are committed in groups: the first write unit of work of a
  turn of the event loop opens the transaction (BEGIN IMMEDIATE), each one is a savepoint in it
  (released on commit, rolled back alone on failure), and the transaction is committed once, at
  the next turn, for all of them; each unit's `commit()` returns when that COMMIT has (with its
  error, if it failed). Reads run on the other connection, which sees only what is committed
  (WAL): never what a group has written and not yet committed, and never waiting for it. One
  COMMIT for the sends of a turn instead of one each: it was a fifth of a send's time
  (docs/benchmark.md, "Messages").
- **PostgreSQL**: psycopg's asyncio connections from a psycopg_pool pool, on the event loop.
  Every statement is a round trip to another host; while a unit of work waits for one, the loop
  serves other requests. Connections are in autocommit: a write unit of work sends BEGIN and
  COMMIT itself, a read runs its statements alone (each sees a consistent snapshot).

A connection that fails (server gone, connection broken) is dropped; the next unit of work gets a
new one, so the server recovers by itself when the database comes back. Statements are prepared
once by the drivers (sqlite3's statement cache; psycopg prepares a query after a few runs).
SQLAlchemy still makes the SQLite connections (its connect hooks set the pragmas), runs the
migrations and describes the schema in tables.py.

SQLite's WAL is checkpointed by a thread of the process's own (`PRAGMA wal_checkpoint(PASSIVE)`
every second, on a connection of its own), not by the commit that happens to cross the WAL's
threshold: the request path's connections have `wal_autocheckpoint = 0`. A commit that
checkpoints copies and syncs a thousand pages while the event loop waits; moved off the loop,
a send's transaction costs half (docs/benchmark.md, "Messages").
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Engine

Row = tuple[Any, ...]
log = logging.getLogger("chatapp_accounts.storage")
CHECKPOINT_SECONDS = 1.0


class Connection(Protocol):
    repositories: object  # the storage's own, made on the connection's first unit of work

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """The statement's row count."""

    async def begin(self) -> None:
        """Start a transaction: a write one (SQLite takes its write lock now)."""

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def write_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run the statements as one transaction and commit it (storage/batch.py)."""


class Database(Protocol):
    dialect: str
    engine: Engine  # SQLAlchemy's, for migrations and operator commands
    IntegrityError: type[Exception]
    count: StatementCount

    def sql(self, statement: str) -> str:
        """A statement written with `?` placeholders, in the driver's own."""

    async def acquire(self, *, write: bool = False) -> Connection:
        """A connection, for a write unit of work or a read one; raises ConnectionUnavailable
        when none can be had."""

    async def release(self, conn: Connection, *, broken: bool = False) -> None: ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """A failure of the connection or the server, not of the statement."""

    async def close(self) -> None: ...


class StatementCount:
    """Statements a database's connections have sent (BEGIN, COMMIT and savepoints included):
    the `chatapp_db_statements` metric, and the benchmark's statements per message."""

    __slots__ = ("statements",)

    def __init__(self) -> None:
        self.statements = 0


class ConnectionUnavailable(Exception):
    """No connection to the database could be had (the storage layer answers 503 for it)."""


class SqliteConnection:
    __slots__ = ("_count", "_deferred", "_group", "_unit", "_waiting", "raw", "repositories")

    def __init__(self, raw: Any, count: StatementCount) -> None:
        self.raw = raw
        self._count = count
        self.repositories: object = None
        # The open group transaction's COMMIT, which its units' commit() await.
        self._group: asyncio.Future[None] | None = None
        self._waiting = 0  # units released into the group, awaiting its COMMIT
        self._unit = False  # a write unit of work's savepoint is open
        self._deferred = False  # the group's turn to commit came while a unit was open

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._count.statements += 1
        return self.raw.execute(sql, params)

    @property
    def in_unit(self) -> bool:
        return self._unit

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self._run(sql, params).fetchall()
        return rows

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._run(sql, params).rowcount)

    async def begin(self) -> None:
        loop = asyncio.get_running_loop()
        if self._group is not None and self._group.get_loop() is not loop:
            self.end_group()  # left by an event loop that is gone (a test's, a command's)
        if self._group is None:
            # The write lock up front: a read-then-write transaction never fails half-way
            # with "database is locked".
            self._run("BEGIN IMMEDIATE")
            self._group = loop.create_future()
            loop.call_soon(self.end_group)
        self._run("SAVEPOINT unit")
        self._unit = True

    async def commit(self) -> None:
        group = self._group
        assert self._unit and group is not None
        self._run("RELEASE unit")
        self._close_unit()
        self._waiting += 1
        await asyncio.shield(group)

    async def rollback(self) -> None:
        if not self._unit:  # released already: its group's COMMIT failed, nothing to undo
            return
        self._close_unit()
        if self.raw.in_transaction:  # else an error rolled the whole transaction back
            self._run("ROLLBACK TO unit")
            self._run("RELEASE unit")

    async def write_batch(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        await self.begin()
        try:
            for sql, params in statements:
                self._run(sql, params)
        except BaseException:
            await self.rollback()
            raise
        await self.commit()

    def _close_unit(self) -> None:
        self._unit = False
        if self._deferred:
            self._deferred = False
            asyncio.get_running_loop().call_soon(self.end_group)

    def end_group(self) -> None:
        """COMMIT the group's transaction and tell its units how it went."""
        if self._group is None:
            return
        if self._unit:  # a unit is still open (it awaited something): once it ends
            self._deferred = True
            return
        try:
            if not self.raw.in_transaction:
                raise RuntimeError("an error rolled the transaction back before its COMMIT")
            self._run("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the units that wait are told
            self.abandon(exc)
            return
        group, self._group, self._waiting = self._group, None, 0
        if not group.done():
            group.set_result(None)

    def abandon(self, exc: BaseException) -> None:
        """Roll the group's transaction back (a unit's savepoint with it) and fail the units
        that wait for its COMMIT."""
        group, self._group = self._group, None
        waiting, self._waiting = self._waiting, 0
        self._unit = self._deferred = False
        try:
            if self.raw.in_transaction:
                self._run("ROLLBACK")
        except Exception:  # noqa: BLE001, S110 - the connection is broken: exc says why
            pass
        if group is not None and not group.done():
            if waiting:
                group.set_exception(exc)
            else:
                group.set_result(None)  # nobody waits for it


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, engine: Engine, on_connections: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self._on_connections = on_connections
        self.count = StatementCount()
        dbapi: Any = engine.dialect.dbapi
        self.IntegrityError: type[Exception] = dbapi.IntegrityError
        self._OperationalError: type[Exception] = dbapi.OperationalError
        self._local = threading.local()
        self._all: list[SqliteConnection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None

    def sql(self, statement: str) -> str:
        return statement

    async def acquire(self, *, write: bool = False) -> Connection:
        slot = "writer" if write else "reader"
        conn: SqliteConnection | None = getattr(self._local, slot, None)
        if conn is None:
            try:
                proxied = self.engine.raw_connection()
            except Exception as exc:
                raise ConnectionUnavailable(str(exc)) from exc
            proxied.detach()  # ours for the thread's lifetime, not the engine pool's
            dbapi: Any = proxied.dbapi_connection
            dbapi.execute("PRAGMA wal_autocheckpoint = 0")
            conn = SqliteConnection(dbapi, self.count)
            setattr(self._local, slot, conn)
            self._count(conn, add=True)
            self._start_checkpointer()
        if conn.in_unit:
            raise RuntimeError("a unit of work is already open on this thread's connection")
        return conn

    async def release(self, conn: Connection, *, broken: bool = False) -> None:
        if broken:
            assert isinstance(conn, SqliteConnection)
            conn.abandon(ConnectionError("the database connection broke"))
            for slot in ("reader", "writer"):
                if getattr(self._local, slot, None) is conn:
                    setattr(self._local, slot, None)
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

    def _start_checkpointer(self) -> None:
        with self._lock:
            if self._checkpointer is None:
                self._stop.clear()
                self._checkpointer = threading.Thread(
                    target=self._checkpoints, name="sqlite-checkpoint", daemon=True
                )
                self._checkpointer.start()

    def _checkpoints(self) -> None:
        raw: Any = None
        while not self._stop.wait(CHECKPOINT_SECONDS):
            try:
                if raw is None:
                    proxied = self.engine.raw_connection()
                    proxied.detach()
                    raw = proxied.dbapi_connection
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # noqa: BLE001 - tried again in a second
                log.warning("SQLite checkpoint failed: %s", exc)
                if raw is not None:
                    _close(raw)
                raw = None
        if raw is not None:
            _close(raw)

    async def close(self) -> None:
        self._stop.set()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.join(5)
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.end_group()  # what its units released is committed
            _close(conn.raw)
        self._local = threading.local()
        self.engine.dispose()


def _close(raw: Any) -> None:
    try:
        raw.close()
    except Exception:  # noqa: BLE001, S110 - it is broken already, or we are shutting down
        pass


def conditions(filters: Sequence[tuple[str, Any]]) -> tuple[str, list[Any]]:
    """`a = ? AND b >= ? ...` of the (clause, value) pairs whose value is not None, and their
    values; `1 = 1` for none."""
    given = [(clause, value) for clause, value in filters if value is not None]
    return " AND ".join(c for c, _ in given) or "1 = 1", [v for _, v in given]


def placeholders(n: int) -> str:
    """`?, ?, ...`: n parameters of an IN list."""
    return ", ".join("?" * n)
