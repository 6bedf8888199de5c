"""The unit of work: the thread's connection, and a transaction for writes, committed
explicitly. Reads run without one (each statement sees a consistent snapshot)."""

from __future__ import annotations

from typing import Any

from ..security.tokens import TokenCipher
from .db import Database
from .repositories import SqlAccounts, SqlApplications, SqlTenants, Statements


class SqlUnitOfWork:
    accounts: SqlAccounts
    applications: SqlApplications
    tenants: SqlTenants

    def __init__(self, db: Database, sql: Statements, cipher: TokenCipher, *, write: bool) -> None:
        self._db = db
        self._sql = sql
        self._cipher = cipher
        self._write = write
        self._conn: Any = None
        self._open = False

    def __enter__(self) -> SqlUnitOfWork:
        db = self._db
        try:
            conn = db.connection()
            if self._write:
                conn.execute("BEGIN IMMEDIATE" if db.dialect == "sqlite" else "BEGIN")
                self._open = True
        except Exception as exc:
            if db.is_disconnect(exc):
                db.discard()
            raise
        self._conn = conn
        sql = self._sql
        self.accounts = SqlAccounts(db, conn, sql, self._cipher)
        self.applications = SqlApplications(conn, sql)
        self.tenants = SqlTenants(conn, sql)
        return self

    def commit(self) -> None:
        if self._open:
            self._conn.execute("COMMIT")
            self._open = False

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None and self._db.is_disconnect(exc):
            self._db.discard()
            return
        if self._open:
            self._open = False
            try:
                self._conn.execute("ROLLBACK")
            except Exception as failure:
                if self._db.is_disconnect(failure):
                    self._db.discard()
                    return
                raise


class SqlUnitOfWorkFactory:
    """What the use cases are given: `factory(write=True)` opens a write transaction."""

    def __init__(self, db: Database, cipher: TokenCipher) -> None:
        self.db = db
        self.engine = db.engine
        self.cipher = cipher
        self.sql = Statements(db)

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, self.sql, self.cipher, write=write)
