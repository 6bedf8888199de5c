from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from chatapp_accounts.security.tokens import new_key
from tests.conftest import PgDatabases

from .messaging import FAST_RETRIES, World, messaging_world
from .server import base_env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_env(request: pytest.FixtureRequest, tmp_path: object) -> dict[str, str]:
    """CHATAPP_* settings of an empty database of each kind (not yet migrated)."""
    if request.param == "sqlite":
        return {"CHATAPP_DATABASE_URL": f"sqlite:///{tmp_path}/e2e.sqlite3"}
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    return {"CHATAPP_DATABASE_URL": dbs.new(), "CHATAPP_ENCRYPTION_KEYS": new_key()}


@pytest.fixture
def world(db_env: dict[str, str]) -> Iterator[World]:
    """The message tests' world on each database (messaging.py messaging_world)."""
    with messaging_world(base_env(**db_env, **FAST_RETRIES)) as made:
        yield made


def report(line: str) -> None:
    """A line for the run's summary (tests/conftest.py prints them), from any test process."""
    with open(os.environ["CHATAPP_TEST_REPORT"], "a", encoding="utf-8") as f:
        f.write(line + "\n")
