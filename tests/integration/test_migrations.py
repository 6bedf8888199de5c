"""Migrations run from empty on both databases and produce exactly the schema in tables.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.migrate import current_revision, head_revision, upgrade
from chatapp_accounts.storage.tables import metadata
from tests.conftest import PgDatabases


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/empty.sqlite3"
    else:
        dbs: PgDatabases = request.getfixturevalue("pg_databases")
        url = dbs.new()
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_matches_the_tables(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert set(inspect(empty_engine).get_table_names()) >= {"tenants", "applications", "accounts"}
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    upgrade(empty_engine)  # idempotent
    assert current_revision(empty_engine) == head_revision()


def test_constraints_have_stable_names(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    insp = inspect(empty_engine)
    uniques = {u["name"] for u in insp.get_unique_constraints("accounts")}
    assert "uq_accounts_provider_external_id" in uniques
    fks = {fk["name"] for fk in insp.get_foreign_keys("accounts")}
    assert fks == {"fk_accounts_tenant_id_tenants", "fk_accounts_application_id_applications"}
