from __future__ import annotations

import os

import pytest

from chatapp_accounts.security.tokens import new_key
from tests.conftest import PgDatabases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_env(request: pytest.FixtureRequest, tmp_path: object) -> dict[str, str]:
    """CHATAPP_* settings of an empty database of each kind (not yet migrated)."""
    if request.param == "sqlite":
        return {"CHATAPP_DATABASE_URL": f"sqlite:///{tmp_path}/e2e.sqlite3"}
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    return {"CHATAPP_DATABASE_URL": dbs.new(), "CHATAPP_ENCRYPTION_KEYS": new_key()}


def report(line: str) -> None:
    """A line for the run's summary (tests/conftest.py prints them), from any test process."""
    with open(os.environ["CHATAPP_TEST_REPORT"], "a", encoding="utf-8") as f:
        f.write(line + "\n")
