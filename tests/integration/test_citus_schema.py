"""Past one PostgreSQL (docs/scaling.md): the schema the migrations make on PostgreSQL, read back
from the database, against Citus's rule for sharding by tenant. Every table is either
distributed by its tenant column (`tenant_id`; the tenants table itself would be a reference
table) or a small reference table named in docs/scaling.md; a distributed table's primary key,
unique constraints and foreign keys to other distributed tables include the tenant column.

Migration 0007 made it so; SQLite keeps its own keys (a lone `pk`, the only kind it
autoincrements)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.migrate import upgrade
from tests.conftest import PgDatabases

TENANT = "tenant_id"
# Replicated to every node: small, or belonging to no tenant. The routes hold what is unique
# across tenants (a page's one owner) and find the tenant where a request names none (a JWT).
# phone_number_routes finds a WhatsApp number's tenant from Meta's id for it (migration 0008).
# admin_tokens and audit_log are the operators' (migration 0010).
REFERENCE = {
    "tenants", "account_routes", "application_routes", "phone_number_routes", "alembic_version",
    "admin_tokens", "audit_log",
}  # fmt: skip


DISTRIBUTED = {
    "account_counts", "accounts", "applications", "messages", "message_statuses", "send_jobs",
    "webhooks", "webhook_attempts", "provider_messages", "held_statuses", "rate_windows",
}  # fmt: skip


def _violations(url: str, revision: str = "head") -> dict[str, set[str]]:
    """What breaks the rule in the schema of `revision`, by table."""
    engine = make_engine(url)
    try:
        upgrade(engine, revision)
        found: dict[str, set[str]] = {}
        schema = inspect(engine)
        tables = set(schema.get_table_names()) - REFERENCE
        # A new table: distributed by tenant, or a reference one? (Older revisions lack some.)
        assert tables <= DISTRIBUTED and (revision != "head" or tables == DISTRIBUTED)
        for table in tables:
            columns = {c["name"] for c in schema.get_columns(table)}
            broken: set[str] = set()
            if TENANT not in columns:
                broken.add("no tenant column")
            else:
                pk = schema.get_pk_constraint(table)["constrained_columns"]
                if TENANT not in pk:
                    broken.add(f"primary key ({', '.join(pk)})")
                for unique in schema.get_unique_constraints(table):
                    if TENANT not in unique["column_names"]:
                        broken.add(f"unique ({', '.join(unique['column_names'])})")
                for index in schema.get_indexes(table):
                    if index["unique"] and TENANT not in index["column_names"]:
                        broken.add(f"unique ({', '.join(index['column_names'])})")
                for fk in schema.get_foreign_keys(table):
                    target = fk["referred_table"]
                    if target not in REFERENCE and TENANT not in fk["constrained_columns"]:
                        keys = ", ".join(fk["constrained_columns"])
                        broken.add(f"foreign key ({keys}) -> {target}")
            if broken:
                found[table] = broken
        return found
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_every_table_is_sharded_by_tenant_or_a_reference_table(pg_databases: PgDatabases) -> None:
    assert _violations(pg_databases.new()) == {}


@pytest.mark.postgres
def test_the_rule_finds_what_migration_0007_mended(pg_databases: PgDatabases) -> None:
    """The check itself, on the schema before migration 0007 (account_routes and
    application_routes did not exist yet)."""
    assert _violations(pg_databases.new(), "0006") == {
        "accounts": {"primary key (pk)", "unique (provider, external_id)",
                     "foreign key (application_id) -> applications"},
        "applications": {"primary key (pk)", "unique (id)"},
        "messages": {"primary key (pk)", "unique (uuid)"},
        "message_statuses": {"no tenant column"},
        "send_jobs": {"primary key (pk)", "unique (message_pk)",
                      "foreign key (message_pk) -> messages"},
        "webhooks": {"primary key (pk)", "foreign key (message_pk) -> messages"},
        "webhook_attempts": {"no tenant column"},
    }  # fmt: skip
