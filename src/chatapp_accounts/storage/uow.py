"""The unit of work: a connection acquired for the block, and a transaction for writes,
committed explicitly. Reads run without one (each statement sees a consistent snapshot).

Two kinds. `factory(write=True)` opens a transaction of its own, for the rules that read then
write (accounts, applications, tenants) and for the senders' and dispatcher's claims. Without
`write`, the unit reads outside a transaction, and what it writes through the message
repositories (messages, statuses, webhooks, send jobs) are rows committed at `commit()` in a
batch with other units' (batch.py): the message pipeline's one way to write. In a `write=True`
unit those rows are written in its own transaction, by the same function, before its COMMIT.

Use cases are coroutines, awaited by the request that runs them: on SQLite every statement runs
inline (db.py), on PostgreSQL every round trip is awaited on the event loop. One way for both
databases, reads and writes alike; nothing holds the loop while PostgreSQL answers.
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain.errors import ServiceUnavailable
from ..security.tokens import TokenCipher
from . import batch
from .admin import AdminStatements, SqlAdminTokens, SqlAudit
from .batch import Op, WriteBatch
from .db import Connection, ConnectionUnavailable, Database
from .jobs import SqlJobs
from .messages import MessageStatements, SqlMessages
from .outbox import Outbox, SqlWebhooks
from .providers import ProviderStatements, SqlProviderMessages
from .repositories import AccountRows, SqlAccounts, SqlApplications, SqlTenants, Statements


class _Repositories:
    """The repositories of one connection, made once: a unit of work only borrows them. The
    message repositories keep the rows a unit writes: made for each unit, with its list."""

    __slots__ = ("accounts", "admin_tokens", "applications", "audit", "owner", "tenants")

    def __init__(self, factory: SqlUnitOfWorkFactory, conn: Connection) -> None:
        self.owner = factory
        self.accounts = SqlAccounts(factory.db, conn, factory.sql, factory.rows)
        self.applications = SqlApplications(conn, factory.sql)
        self.tenants = SqlTenants(conn, factory.sql, factory.cipher)
        self.admin_tokens = SqlAdminTokens(conn, factory.admin_sql)
        self.audit = SqlAudit(conn, factory.admin_sql)


class SqlUnitOfWork:
    __slots__ = (
        "_conn",
        "_factory",
        "_held",
        "_open",
        "_ops",
        "_write",
        "accounts",
        "admin_tokens",
        "applications",
        "audit",
        "jobs",
        "messages",
        "providers",
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
        self._held = True
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
        self.admin_tokens = repos.admin_tokens
        self.audit = repos.audit
        self._ops: list[Op] = []
        sql = factory.message_sql
        self.messages = SqlMessages(conn, sql, self._ops)
        self.webhooks = SqlWebhooks(conn, sql, self._ops)
        self.jobs = SqlJobs(conn, sql, self._ops)
        self.providers = SqlProviderMessages(conn, factory.provider_sql, self._ops)
        return self

    @property
    def conn(self) -> Connection:
        """The unit of work's connection, for the outbox's dispatcher (storage/messages.py)."""
        return self._conn

    async def commit(self) -> None:
        ops = list(self._ops)
        self._ops.clear()
        factory = self._factory
        if self._open:
            if ops:
                await batch.write(self._conn, ops, factory.db.sql)
            await self._conn.commit()
            self._open = False
            if ops:
                factory.written({op.table for op in ops})
        elif ops:
            # The connection goes back first: the batch needs one of its own (PostgreSQL's
            # pool), and this unit has nothing more to read.
            await self._release(None)
            try:
                await factory.batch.commit(ops)
            except ConnectionUnavailable as exc:
                raise ServiceUnavailable() from exc
            except Exception as exc:
                if factory.db.is_disconnect(exc):
                    raise ServiceUnavailable() from exc
                raise

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
        if not self._held:
            return
        self._held = False
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
        self.provider_sql = ProviderStatements(db)
        self.admin_sql = AdminStatements(db)
        self.outbox = Outbox(db, cipher)
        self.batch = WriteBatch(db, on_written=self.written, notify=notifications(db))
        # Called after a commit that wrote these tables: the senders and the dispatcher wake
        # on theirs (api/app.py).
        self.on_written: list[Callable[[set[str]], None]] = []

    def written(self, tables: set[str]) -> None:
        for wake in self.on_written:
            wake(tables)

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
        """Write the rows still waiting for a batch, then close every connection."""
        await self.batch.close()
        await self.db.close()


# Tables whose new rows other processes' senders and dispatchers wait for (PostgreSQL: NOTIFY,
# sent with the batch that wrote them; storage/listen.py).
CHANNELS = {"send_jobs": "chatapp_send_jobs", "webhooks": "chatapp_webhooks"}


def notifications(db: Database) -> Callable[[set[str]], list[str]] | None:
    if db.dialect != "postgresql":
        return None

    def notify(tables: set[str]) -> list[str]:
        return [f"NOTIFY {CHANNELS[t]}" for t in sorted(tables) if t in CHANNELS]

    return notify
