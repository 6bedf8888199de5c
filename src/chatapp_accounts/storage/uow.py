"""The unit of work: the thread's connection, and a transaction for writes, committed
explicitly. Reads run without one (each statement sees a consistent snapshot)."""

from __future__ import annotations

import threading
from typing import Any

from ..domain.errors import ServiceUnavailable
from ..security.tokens import TokenCipher
from .db import Database
from .repositories import SqlAccounts, SqlApplications, SqlTenants, Statements


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
            if db.is_disconnect(exc):
                db.discard()
                raise ServiceUnavailable() from exc
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
        if exc is not None and db.is_disconnect(exc):
            db.discard()
            raise ServiceUnavailable() from exc
        if self._open:
            self._open = False
            assert self._repos is not None
            try:
                self._repos.conn.execute("ROLLBACK")
            except Exception as failure:
                if db.is_disconnect(failure):
                    db.discard()
                    raise ServiceUnavailable() from failure
                raise


class SqlUnitOfWorkFactory:
    """What the use cases are given: `factory(write=True)` opens a write transaction."""

    def __init__(self, db: Database, cipher: TokenCipher) -> None:
        self.db = db
        self.engine = db.engine
        self.cipher = cipher
        self.sql = Statements(db)
        self._local = threading.local()

    def repositories(self) -> _Repositories:
        conn = self.db.connection()
        repos: _Repositories | None = getattr(self._local, "repos", None)
        if repos is None or repos.conn is not conn:
            repos = self._local.repos = _Repositories(self.db, conn, self.sql, self.cipher)
        return repos

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, write=write)
