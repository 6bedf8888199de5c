"""One long-lived DBAPI connection per thread, for the repositories' plain SQL.

On SQLite a server process runs its use cases on its event-loop thread, so one connection
serves every request, with no pool checkout and no thread hop; on PostgreSQL they run on the
unit-of-work factory's threads (uow.py), each with a connection of its own. Statements are
prepared once by the driver (sqlite3's statement cache; psycopg prepares a query after a few
executions). Reads run without a transaction
(each statement sees a consistent snapshot); writes run in BEGIN / COMMIT. A connection that
fails is discarded, and the next request opens a new one: the server recovers by itself when
the database comes back.

SQLAlchemy still makes the connections (its connect hooks set SQLite's pragmas), runs the
migrations, and describes the schema in tables.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError


class Database:
    def __init__(self, engine: Engine, on_connections: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self._on_connections = on_connections
        self.dialect = engine.dialect.name
        dbapi: Any = engine.dialect.dbapi
        self.IntegrityError: type[Exception] = dbapi.IntegrityError
        # Connection-level failures (server gone, connection broken): discard and reconnect.
        self.OperationalError: type[Exception] = dbapi.OperationalError
        self.InterfaceError: type[Exception] = dbapi.InterfaceError
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        # Plain SQL is written with `?` placeholders; psycopg wants `%s`.
        self.placeholder = "%s" if self.dialect == "postgresql" else "?"

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", "%s")

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def new_connection(self) -> Any:
        """A DBAPI connection of the caller's own, not the pool's (made with the engine's
        connect hooks); on PostgreSQL in autocommit: transactions are explicit BEGIN / COMMIT."""
        proxied = self.engine.raw_connection()
        proxied.detach()
        conn: Any = proxied.dbapi_connection
        assert conn is not None
        if self.dialect == "postgresql":
            conn.autocommit = True
        return conn

    def _connect(self) -> Any:
        conn = self.new_connection()  # ours for the thread's lifetime
        with self._lock:
            self._all.append(conn)
            count = len(self._all)
        if self._on_connections is not None:
            self._on_connections(count)
        return conn

    def discard(self) -> None:
        """Drop this thread's connection (after a connection-level failure)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
                count = len(self._all)
            if self._on_connections is not None:
                self._on_connections(count)
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - it is broken already
                pass

    def is_disconnect(self, exc: BaseException) -> bool:
        """A failure of the connection or the server, not of the statement."""
        if isinstance(exc, DBAPIError):  # from engine.raw_connection()
            return exc.connection_invalidated or exc.orig is None or self.is_disconnect(exc.orig)
        return isinstance(exc, self.OperationalError | self.InterfaceError) and (
            self.dialect == "postgresql" or "disk I/O" in str(exc) or "unable to open" in str(exc)
        )

    def schema_revision(self) -> str | None:
        """The migration the database is at (None before the first): for /readyz."""
        conn = self.connection()
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except Exception as exc:
            if self.is_disconnect(exc):
                self.discard()
                raise
            return None
        return str(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing at shutdown
                pass
        self._local = threading.local()
        self.engine.dispose()
