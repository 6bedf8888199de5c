"""Fixtures shared by every test: databases (SQLite and PostgreSQL), apps, tenants.

PostgreSQL comes from CHATAPP_TEST_POSTGRES_URL (default: the local server of these machines).
Under CI=true an unreachable PostgreSQL fails the run instead of skipping its tests.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, text
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.config import Settings
from chatapp_accounts.domain.limits import LIMIT_MAX
from chatapp_accounts.domain.models import BasicCredentials, Tenant
from chatapp_accounts.domain.ports import UnitOfWorkFactory
from chatapp_accounts.domain.tenants import create_tenant
from chatapp_accounts.security.service import SecurityService
from chatapp_accounts.security.tokens import TokenCipher, new_key
from chatapp_accounts.storage.databases import open_database
from chatapp_accounts.storage.engine import make_engine, normalise_url
from chatapp_accounts.storage.migrate import upgrade
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
T = TypeVar("T")
_runner: asyncio.Runner | None = None


def sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """A coroutine (a use case, a unit of work) run from a test, to its end. Every call in a
    test process shares one event loop: a PostgreSQL pool belongs to the loop it opened in."""
    global _runner
    if _runner is None:
        _runner = asyncio.Runner()
    return _runner.run(coroutine)


async def read(uow_factory: UnitOfWorkFactory, query: Callable[[Any], Awaitable[T]]) -> T:
    """`query(uow)` in a read unit of work of its own."""
    async with uow_factory() as uow:
        return await query(uow)


IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    """The file where every test process (pytest-xdist's workers inherit the variable) adds
    lines for the run's summary, such as Schemathesis's request counts."""
    if not hasattr(config, "workerinput"):
        os.environ["CHATAPP_TEST_REPORT"] = str(Path(tempfile.mkdtemp()) / "report.txt")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    path = Path(os.environ.get("CHATAPP_TEST_REPORT", ""))
    if path.is_file():
        terminalreporter.section("schemathesis")
        for line in path.read_text(encoding="utf-8").splitlines():
            terminalreporter.write_line(line)


def postgres_admin_url() -> str:
    return os.environ.get("CHATAPP_TEST_POSTGRES_URL", DEFAULT_PG)


def _pg_reachable(url: str) -> str | None:
    try:
        engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    url = postgres_admin_url()
    problem = _pg_reachable(url)
    if problem:
        message = f"PostgreSQL at {url} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return url


class PgDatabases:
    """Makes throwaway databases on the test server and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
        self.admin_url = admin_url
        self.made: list[str] = []

    def new(self) -> str:
        name = f"chatapp_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        base, _, _ = normalise_url(self.admin_url).rpartition("/")
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases(pg_server: str) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_server)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def pg_shared_url(pg_databases: PgDatabases) -> str:
    """One migrated database for the session; tests empty it before use."""
    url = pg_databases.new()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _truncate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE account_counts, accounts, applications, tenants, admin_tokens, audit_log, "
                "rate_windows "
                "RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/chatapp.sqlite3"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url: str = request.getfixturevalue("pg_shared_url")
    _truncate(url)
    return url


@pytest.fixture
def encryption_key() -> str:
    return new_key()


@pytest.fixture
def settings(database_url: str, encryption_key: str) -> Settings:
    return Settings(
        database_url=database_url,
        encryption_keys=(encryption_key,),
        public_base_url="https://accounts.example.test",
        # Counted, never refused: tests about limits set their own (tests/integration/
        # test_limits.py).
        limit_requests_per_second=LIMIT_MAX,
        limit_messages_per_second=LIMIT_MAX,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow_factory(engine: Engine, encryption_key: str) -> Iterator[SqlUnitOfWorkFactory]:
    factory = SqlUnitOfWorkFactory(
        open_database(engine, pool_size=8, pool_timeout=5),
        TokenCipher.from_texts([encryption_key]),
    )
    yield factory
    sync(factory.close())


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass(frozen=True)
class TenantCreds:
    api_key: str
    api_secret: str
    tenant: Tenant

    @property
    def credentials(self) -> BasicCredentials:
        return BasicCredentials(self.api_key, self.api_secret)

    @property
    def headers(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def make_tenant(uow_factory: SqlUnitOfWorkFactory) -> TenantCreds:
    made = sync(create_tenant(uow_factory, SecurityService()))
    record = sync(read(uow_factory, lambda uow: uow.tenants.by_api_key(made.api_key)))
    assert record is not None
    return TenantCreds(made.api_key, made.api_secret, Tenant(record.id, record.api_key))


@pytest.fixture
def alice(uow_factory: SqlUnitOfWorkFactory) -> TenantCreds:
    return make_tenant(uow_factory)


@pytest.fixture
def bob(uow_factory: SqlUnitOfWorkFactory) -> TenantCreds:
    return make_tenant(uow_factory)
