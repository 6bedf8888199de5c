from __future__ import annotations

import os
import tempfile
from pathlib import Path
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


def _report_file() -> Path:
    """Where every test process (pytest-xdist's workers included) adds the lines the run
    reports at the end (Schemathesis request counts): one file per run."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    return Path(tempfile.gettempdir()) / f"chatapp-e2e-report-{run}.txt"


def report(line: str) -> None:
    with _report_file().open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    path = _report_file()
    if path.exists():
        terminalreporter.section("schemathesis")
        for line in path.read_text(encoding="utf-8").splitlines():
            terminalreporter.write_line(line)
        path.unlink()
