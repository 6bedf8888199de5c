"""Engines for the embedded default (SQLite, one file, WAL) and for PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from ..config import ConfigError

# Read by the "begin" hook: a write transaction on SQLite takes the write lock up front,
# so a read-then-write transaction never fails with "database is locked" half-way.
BEGIN_IMMEDIATE = "chatapp_begin_immediate"
# Seconds to wait for a PostgreSQL connection to open: never hang on a black-holed server
# (the engine's connections and the request path's pool, storage/postgres.py, alike).
CONNECT_TIMEOUT = 5
# Prepared statements kept per connection (sqlite3's cache; psycopg's `prepared_max`). The
# outbox's multi-row statements come in a hundred sizes each (`IN (?, ...)`, `VALUES (...), ...`):
# past the drivers' defaults (128, 100) they pushed the request path's statements out, to be
# prepared again and again (docs/benchmark.md, "Messages").
STATEMENTS_KEPT = 1024


def normalise_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg 3, the driver this project ships."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(database_url: str, *, pool_size: int = 5) -> Engine:
    url = normalise_url(database_url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise ConfigError(f"CHATAPP_DATABASE_URL is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "cached_statements": STATEMENTS_KEPT}
    )
    path = make_url(url).database

    @event.listens_for(engine, "do_connect")
    def _create_private(*_args: Any) -> None:
        # SQLite would create a missing file 0644; made here first, it is its owner's only, as
        # the key file beside it is (SQLite gives its -wal and -shm files the same mode).
        if path and path != ":memory:" and not path.startswith("file:"):
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Transactions are ours, not the driver's implicit ones (see the "begin" hook).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: an answered write survives a crash of the process (it is in the
        # WAL, in the OS cache); FULL would also survive a power cut, at a high cost.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.info.pop(BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
