"""Migrations run from empty on both databases and produce exactly the schema in tables.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.migrate import current_revision, head_revision, upgrade
from chatapp_accounts.storage.tables import metadata_for
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
        diff = compare_metadata(
            MigrationContext.configure(conn), metadata_for(empty_engine.dialect.name)
        )
    assert diff == []
    upgrade(empty_engine)  # idempotent
    assert current_revision(empty_engine) == head_revision()


def test_constraints_have_stable_names(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    insp = inspect(empty_engine)
    uniques = {u["name"] for u in insp.get_unique_constraints("accounts")}
    # PostgreSQL keeps a page's one owner in account_routes only (migration 0007).
    postgresql = empty_engine.dialect.name == "postgresql"
    assert ("uq_accounts_provider_external_id" in uniques) is not postgresql
    assert insp.get_pk_constraint("account_routes")["name"] == "pk_account_routes"
    fks = {fk["name"] for fk in insp.get_foreign_keys("accounts")}
    assert fks == {"fk_accounts_tenant_id_tenants", "fk_accounts_application_id_applications"}


def test_account_counts_are_kept_by_the_database(empty_engine: Engine) -> None:
    """total_items reads counts that triggers keep, whoever writes the rows."""
    from sqlalchemy import text

    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        for key in ("t1", "t2"):
            conn.execute(text("INSERT INTO tenants (api_key, secret_hash, revoked) VALUES (:k, 'h', :f)"),
                         {"k": key, "f": False})  # fmt: skip
        ids = dict(conn.execute(text("SELECT api_key, id FROM tenants")).all())
        for i in range(30):  # bulk SQL, as an operator's tooling might write
            conn.execute(text("INSERT INTO accounts (tenant_id, provider, external_id) VALUES (:t, :p, :e)"),
                         {"t": ids["t1" if i % 3 else "t2"], "p": ["whatsapp", "rcs"][i % 2], "e": f"e{i}"})  # fmt: skip
        conn.execute(text("DELETE FROM accounts WHERE external_id IN ('e1', 'e2', 'e4')"))
    with empty_engine.begin() as conn:
        counted = conn.execute(text(
            "SELECT tenant_id, provider, COUNT(*) FROM accounts GROUP BY tenant_id, provider"
        )).all()  # fmt: skip
        kept = conn.execute(text(
            "SELECT tenant_id, provider, SUM(n) FROM account_counts "
            "GROUP BY tenant_id, provider HAVING SUM(n) > 0"
        )).all()  # fmt: skip
        assert sorted(map(tuple, counted)) == sorted(map(tuple, kept))
        conn.execute(text("DELETE FROM tenants WHERE api_key = 't2'"))  # cascades
        assert conn.execute(text("SELECT COUNT(*) FROM account_counts WHERE tenant_id = :t"),
                            {"t": ids["t2"]}).scalar() == 0  # fmt: skip


@pytest.mark.postgres
def test_concurrent_writers_of_one_tenant_do_not_wait_on_its_count(
    pg_databases: PgDatabases,
) -> None:
    """Two open transactions add accounts of one tenant and provider: the second is not made to
    wait for the first one's counter row (it would time out on its lock), and both counts land."""
    from sqlalchemy import text

    engine = make_engine(pg_databases.new())
    upgrade(engine)
    try:
        with engine.begin() as conn:
            tenant = conn.execute(text(
                "INSERT INTO tenants (api_key, secret_hash, revoked) VALUES ('k', 'h', false) "
                "RETURNING id"
            )).scalar()  # fmt: skip
        insert = text(
            "INSERT INTO accounts (tenant_id, provider, external_id) VALUES (:t, 'whatsapp', :e)"
        )
        shard = text("SELECT pg_backend_pid() % 16")
        first, second = engine.connect(), engine.connect()
        while second.execute(shard).scalar() == first.execute(shard).scalar():
            # One chance in 16: another backend. Invalidated, not closed: a closed connection
            # goes back to the pool and would be lent again (the loop never ended).
            second.invalidate()
            second.close()
            second = engine.connect()
        first.execute(insert, {"t": tenant, "e": "a"})  # holds its shard's row until commit
        second.execute(text("SET lock_timeout = '2s'"))
        second.execute(insert, {"t": tenant, "e": "b"})  # would time out on one shared row
        second.commit()
        first.commit()
        first.close()
        second.close()
        with engine.connect() as conn:
            total = conn.execute(
                text("SELECT SUM(n) FROM account_counts WHERE tenant_id = :t"), {"t": tenant}
            ).scalar()
        assert total == 2
    finally:
        engine.dispose()


def test_0007_routes_and_tenants_filled_from_existing_rows(empty_engine: Engine) -> None:
    """A database with messages and accounts at 0006 moves to 0007 with its reference tables
    and new tenant columns filled from the rows they belong to, and the rules still hold
    after: one owner per page, an application deleted unlinks its accounts (their tenant
    kept), a message deleted takes its statuses, webhooks and attempts."""
    from sqlalchemy import text

    upgrade(empty_engine, "0006")
    with empty_engine.begin() as conn:
        for key in ("t1", "t2"):
            conn.execute(text("INSERT INTO tenants (api_key, secret_hash, revoked) VALUES (:k, 'h', :f)"),
                         {"k": key, "f": False})  # fmt: skip
        ids = dict(conn.execute(text("SELECT api_key, id FROM tenants")).all())
        t1, t2 = ids["t1"], ids["t2"]
        conn.execute(text(
            "INSERT INTO applications (id, tenant_id, name, public_key, capabilities, privacy, "
            "has_messages) VALUES ('app-1', :t, 'a', 'k', '{}', '{}', :y)"
        ), {"t": t2, "y": True})  # fmt: skip
        conn.execute(text(
            "INSERT INTO accounts (tenant_id, provider, external_id, application_id) "
            "VALUES (:t1, 'whatsapp', '111', NULL), (:t2, 'rcs', 'agent', 'app-1')"
        ), {"t1": t1, "t2": t2})  # fmt: skip
        conn.execute(text(
            "INSERT INTO messages (uuid, tenant_id, direction, channel, message_type, to_id, "
            "from_id, content, created_at) VALUES ('m-1', :t, 'outbound', 'rcs', 'text', 'a', "
            "'b', '{}', 1.0)"
        ), {"t": t2})  # fmt: skip
        message = conn.execute(text("SELECT pk FROM messages")).scalar()
        conn.execute(text("INSERT INTO message_statuses (message_pk, status, at) VALUES (:m, 'submitted', 1.0)"),
                     {"m": message})  # fmt: skip
        conn.execute(text(
            "INSERT INTO webhooks (tenant_id, message_pk, order_key, application_id, kind, url, "
            "destination, body, state, attempts, due_at, created_at) VALUES (:t, :m, :m, "
            "'app-1', 'status', 'http://x/s', 'http://x:80', :b, 'delivered', 1, 1.0, 1.0)"
        ), {"t": t2, "m": message, "b": b"{}"})  # fmt: skip
        hook = conn.execute(text("SELECT pk FROM webhooks")).scalar()
        conn.execute(text("INSERT INTO webhook_attempts (webhook_pk, at, url, status_code) VALUES (:w, 1.0, 'u', 200)"),
                     {"w": hook})  # fmt: skip
    upgrade(empty_engine)
    with empty_engine.begin() as conn:

        def rows(sql: str) -> list[tuple[object, ...]]:
            return sorted(tuple(r) for r in conn.execute(text(sql)).all())

        assert rows("SELECT provider, external_id, tenant_id FROM account_routes") == [
            ("rcs", "agent", t2), ("whatsapp", "111", t1)
        ]  # fmt: skip
        assert rows("SELECT id, tenant_id FROM application_routes") == [("app-1", t2)]
        assert rows("SELECT tenant_id FROM message_statuses") == [(t2,)]
        assert rows("SELECT tenant_id FROM webhook_attempts") == [(t2,)]
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            with conn.begin_nested():
                conn.execute(text("INSERT INTO account_routes (provider, external_id, tenant_id) "
                                  "VALUES ('whatsapp', '111', :t)"), {"t": t2})  # fmt: skip
        conn.execute(text("DELETE FROM applications WHERE id = 'app-1'"))
        assert rows("SELECT tenant_id, application_id FROM accounts WHERE provider = 'rcs'") == [
            (t2, None)
        ]
        conn.execute(text("DELETE FROM messages"))
        for table in ("message_statuses", "webhooks", "webhook_attempts"):
            assert rows(f"SELECT COUNT(*) FROM {table}") == [(0,)]
