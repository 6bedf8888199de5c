"""Past one PostgreSQL (docs/scaling.md): the schema the migrations make on PostgreSQL, read back
from the database, against Citus's rule for sharding by tenant. Every table is either
distributed by its tenant column (`tenant_id`; the tenants table itself would be a reference
table) or a small reference table named in docs/scaling.md; a distributed table's primary key,
unique constraints and foreign keys to other distributed tables include the tenant column.

The schema does not follow the rule yet: docs/scaling.md lists what breaks it and the migration
that will mend it. This test holds that list exactly: a new table or constraint that breaks the
rule fails it, and so does mending one without taking it off the list (the list only shrinks)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.migrate import upgrade
from tests.conftest import PgDatabases

TENANT = "tenant_id"
# Replicated to every node: small, or belonging to no tenant.
REFERENCE = {"tenants", "alembic_version"}
# What breaks the rule today (docs/scaling.md, "What the schema still has to change").
KNOWN = {
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


def _violations(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        found: dict[str, set[str]] = {}
        schema = inspect(engine)
        for table in schema.get_table_names():
            if table in REFERENCE:
                continue
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
    assert _violations(pg_databases.new()) == KNOWN
