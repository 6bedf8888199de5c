from __future__ import annotations

from typing import Any

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


# Lines the run reports at the end, whatever the capture mode (Schemathesis request counts).
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("schemathesis")
        for line in REPORT:
            terminalreporter.write_line(line)
