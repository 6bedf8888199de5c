"""The unit of work: one connection, one transaction, committed explicitly."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, RootTransaction

from ..security.tokens import TokenCipher
from .engine import BEGIN_IMMEDIATE
from .repositories import SqlAccounts, SqlApplications, SqlTenants


class SqlUnitOfWork:
    accounts: SqlAccounts
    applications: SqlApplications
    tenants: SqlTenants

    def __init__(self, engine: Engine, cipher: TokenCipher, *, write: bool) -> None:
        self._engine = engine
        self._cipher = cipher
        self._write = write
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> SqlUnitOfWork:
        conn = self._engine.connect()
        if self._write and self._engine.dialect.name == "sqlite":
            conn.info[BEGIN_IMMEDIATE] = True
        self._conn = conn
        self._tx = conn.begin()
        self.accounts = SqlAccounts(conn, self._cipher)
        self.applications = SqlApplications(conn)
        self.tenants = SqlTenants(conn)
        return self

    def commit(self) -> None:
        assert self._tx is not None
        self._tx.commit()

    def __exit__(self, *exc: object) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._conn.close()
            self._conn = None
            self._tx = None


class SqlUnitOfWorkFactory:
    """What the use cases are given: `factory(write=True)` opens a write transaction."""

    def __init__(self, engine: Engine, cipher: TokenCipher) -> None:
        self.engine = engine
        self.cipher = cipher

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.cipher, write=write)
