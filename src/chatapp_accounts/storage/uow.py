"""The unit of work: a connection acquired for the block, and a transaction for writes,
committed explicitly. Reads run without one (each statement sees a consistent snapshot).

Use cases are coroutines, awaited by the request that runs them: on SQLite every statement runs
inline (db.py), on PostgreSQL every round trip is awaited on the event loop. One way for both
databases, reads and writes alike; nothing holds the loop while PostgreSQL answers.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain.errors import ServiceUnavailable
from ..security.tokens import TokenCipher
from .db import Connection, ConnectionUnavailable, Database
from .messages import MessageStatements, Outbox, SqlMessages, SqlWebhooks
from .repositories import AccountRows, SqlAccounts, SqlApplications, SqlTenants, Statements


class _Repositories:
    """The repositories of one connection, made once: a unit of work only borrows them."""

    __slots__ = ("accounts", "applications", "messages", "owner", "tenants", "webhooks")

    def __init__(self, factory: SqlUnitOfWorkFactory, conn: Connection) -> None:
        self.owner = factory
        self.accounts = SqlAccounts(factory.db, conn, factory.sql, factory.rows)
        self.applications = SqlApplications(conn, factory.sql)
        self.tenants = SqlTenants(conn, factory.sql, factory.cipher)
        self.messages = SqlMessages(conn, factory.message_sql)
        self.webhooks = SqlWebhooks(conn, factory.message_sql)


class SqlUnitOfWork:
    __slots__ = (
        "_conn",
        "_factory",
        "_hooks",
        "_open",
        "_write",
        "accounts",
        "applications",
        "messages",
        "tenants",
        "webhooks",
    )

    def __init__(self, factory: SqlUnitOfWorkFactory, *, write: bool) -> None:
        self._factory = factory
        self._write = write
        self._open = False

    async def __aenter__(self) -> SqlUnitOfWork:
        factory = self._factory
        db = factory.db
        try:
            conn = await db.acquire(write=self._write)
        except ConnectionUnavailable as exc:
            raise ServiceUnavailable() from exc
        self._conn: Connection = conn
        if self._write:
            try:
                await conn.begin()
            except BaseException as exc:
                await self._release(exc)
                raise
            self._open = True
        repos = factory.repositories(conn)
        self.accounts = repos.accounts
        self.applications = repos.applications
        self.tenants = repos.tenants
        self.messages = repos.messages
        self.webhooks = repos.webhooks
        self._hooks = repos.webhooks.added
        return self

    @property
    def conn(self) -> Connection:
        """The unit of work's connection, for the outbox's dispatcher (storage/messages.py)."""
        return self._conn

    async def commit(self) -> None:
        if self._open:
            await self._conn.commit()
            self._open = False
            if self.webhooks.added != self._hooks:
                self._factory.outbox_written()

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._open:
            self._open = False
            try:
                await self._conn.rollback()
            except BaseException as failure:
                await self._release(failure)
                raise
        await self._release(exc)

    async def schema_revision(self) -> str | None:
        try:
            row = await self._conn.fetchone("SELECT version_num FROM alembic_version")
        except Exception as exc:
            if self._factory.db.is_disconnect(exc):
                raise
            return None  # no migration has run
        return str(row[0]) if row else None

    async def _release(self, exc: BaseException | None) -> None:
        """Give the connection back; one that failed is dropped and the answer is 503."""
        db = self._factory.db
        broken = exc is not None and db.is_disconnect(exc)
        await db.release(self._conn, broken=broken)
        if broken:
            raise ServiceUnavailable() from exc


class SqlUnitOfWorkFactory:
    """What the use cases are given: `factory(write=True)` opens a write transaction."""

    def __init__(self, db: Database, cipher: TokenCipher) -> None:
        self.db = db
        self.cipher = cipher
        self.sql = Statements(db)
        self.rows = AccountRows(cipher)
        self.message_sql = MessageStatements(db)
        self.outbox = Outbox(db, cipher)
        # Called after a commit that wrote webhooks: the dispatcher wakes (api/app.py).
        self.on_outbox: Callable[[], None] | None = None

    def outbox_written(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, write=write)

    def repositories(self, conn: Connection) -> _Repositories:
        """The connection's repositories, made on its first unit of work and kept on it:
        connections live long (one per thread on SQLite, one per pooled one on PostgreSQL)."""
        repos = conn.repositories
        if not isinstance(repos, _Repositories) or repos.owner is not self:
            repos = conn.repositories = _Repositories(self, conn)
        return repos

    async def schema_revision(self) -> str | None:
        """The migration the database is at (None before the first): for /readyz. Raises
        ServiceUnavailable when the database cannot be reached."""
        async with self() as uow:
            return await uow.schema_revision()

    async def close(self) -> None:
        """Close every connection (after the requests using them)."""
        await self.db.close()
