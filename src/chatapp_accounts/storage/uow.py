"""The unit of work: the thread's connection, and a transaction for writes, committed
explicitly. Reads run without one (each statement sees a consistent snapshot). The factory
also decides where use cases run (`run`): inline on SQLite, on threads on PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..domain.errors import ServiceUnavailable
from ..security.tokens import TokenCipher
from .db import Database
from .repositories import SqlAccounts, SqlApplications, SqlTenants, Statements

T = TypeVar("T")
SWITCH_INTERVAL = 0.0005  # seconds


class _Repositories:
    """The repositories of one connection, made once: a unit of work only borrows them."""

    __slots__ = ("accounts", "applications", "conn", "tenants")

    def __init__(self, db: Database, conn: Any, sql: Statements, cipher: TokenCipher) -> None:
        self.conn = conn
        self.accounts = SqlAccounts(db, conn, sql, cipher)
        self.applications = SqlApplications(conn, sql)
        self.tenants = SqlTenants(conn, sql)


class SqlUnitOfWork:
    __slots__ = ("_factory", "_open", "_repos", "_write")

    def __init__(self, factory: SqlUnitOfWorkFactory, *, write: bool) -> None:
        self._factory = factory
        self._write = write
        self._open = False
        self._repos: _Repositories | None = None

    @property
    def accounts(self) -> SqlAccounts:
        assert self._repos is not None
        return self._repos.accounts

    @property
    def applications(self) -> SqlApplications:
        assert self._repos is not None
        return self._repos.applications

    @property
    def tenants(self) -> SqlTenants:
        assert self._repos is not None
        return self._repos.tenants

    def __enter__(self) -> SqlUnitOfWork:
        db = self._factory.db
        try:
            repos = self._factory.repositories()
            if self._write:
                repos.conn.execute("BEGIN IMMEDIATE" if db.dialect == "sqlite" else "BEGIN")
                self._open = True
        except Exception as exc:
            _raise_if_disconnect(db, exc)
            raise
        self._repos = repos
        return self

    def commit(self) -> None:
        if self._open:
            assert self._repos is not None
            self._repos.conn.execute("COMMIT")
            self._open = False

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        db = self._factory.db
        if exc is not None:
            _raise_if_disconnect(db, exc)
        if self._open:
            self._open = False
            assert self._repos is not None
            try:
                self._repos.conn.execute("ROLLBACK")
            except Exception as failure:
                _raise_if_disconnect(db, failure)
                raise


class SqlUnitOfWorkFactory:
    """What the use cases are given: `factory(write=True)` opens a write transaction."""

    def __init__(self, db: Database, cipher: TokenCipher, *, threads: int = 8) -> None:
        self.db = db
        self.engine = db.engine
        self.cipher = cipher
        self.sql = Statements(db)
        self._local = threading.local()
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        if db.dialect == "postgresql":
            # A thread whose rows have arrived must get the interpreter lock back from the event
            # loop, which under load only gives it up when asked, after the switch interval:
            # 5 ms by default, a wait per statement. docs/benchmark.md has the figures.
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
            self._pools = (
                ThreadPoolExecutor(threads, thread_name_prefix="db-read"),
                ThreadPoolExecutor(threads, thread_name_prefix="db-write"),
            )

    def repositories(self) -> _Repositories:
        conn = self.db.connection()
        repos: _Repositories | None = getattr(self._local, "repos", None)
        if repos is None or repos.conn is not conn:
            repos = self._local.repos = _Repositories(self.db, conn, self.sql, self.cipher)
        return repos

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, write=write)

    async def run(self, use_case: Callable[..., T], *args: Any, write: bool = False) -> T:
        """`use_case(*args)`, awaited: the one way a request runs a use case.

        On SQLite, in the event loop's own thread: a statement is a few microseconds on a local
        file, less than a hop to another thread. On PostgreSQL every statement is a round trip
        to another host, so the use case runs on a thread of this factory's own, with that
        thread's connection, and the loop serves other requests meanwhile. Reads and writes
        have a pool of threads each, so writes waiting on commits never hold up reads."""
        if self._pools is None:
            return use_case(*args)
        pool = self._pools[1 if write else 0]
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(use_case, *args)
        )

    def close(self) -> None:
        """Stop the threads (after the requests using them) and close every connection."""
        if self._pools is not None:
            for pool in self._pools:
                pool.shutdown(wait=True)
        self.db.close()


def _raise_if_disconnect(db: Database, exc: BaseException) -> None:
    """A connection-level failure: the connection is dropped (the next use reconnects) and the
    answer is 503."""
    if db.is_disconnect(exc):
        db.discard()
        raise ServiceUnavailable() from exc
