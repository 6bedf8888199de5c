"""Keys by tenant: the schema Citus can shard by tenant (docs/scaling.md, "Past one PostgreSQL").

Both databases: the reference tables `account_routes` ((provider, external_id) -> tenant: a
page or number has one owner across tenants) and `application_routes` (id -> tenant: a JWT
names the application only), filled from the rows they route to; a `tenant_id` on
`message_statuses` and `webhook_attempts`, filled from their message and webhook.

PostgreSQL only (SQLite keeps its lone `pk` keys, the only kind it autoincrements): every
primary key, unique constraint and foreign key between distributed tables gains the tenant,
after the column it had (`(pk, tenant_id)`, `(uuid, tenant_id)`), so that a lookup by that
column alone stays one index probe. `accounts` loses its unique `(provider, external_id)` to
`account_routes`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Distributed tables, parents before children.
_TABLES = (
    "applications",
    "accounts",
    "messages",
    "message_statuses",
    "webhooks",
    "send_jobs",
    "webhook_attempts",
)
# (table, column, parent, parent's column, on delete)
_PARENTS = (
    ("accounts", "application_id", "applications", "id", "SET NULL"),
    ("message_statuses", "message_pk", "messages", "pk", "CASCADE"),
    ("webhooks", "message_pk", "messages", "pk", "CASCADE"),
    ("send_jobs", "message_pk", "messages", "pk", "CASCADE"),
    ("webhook_attempts", "webhook_pk", "webhooks", "pk", "CASCADE"),
)
# (table, column) unique across the table before, within a tenant after
_UNIQUE = (("applications", "id"), ("messages", "uuid"), ("send_jobs", "message_pk"))
# Tables that had no tenant column: (table, parent key column, parent)
_NEW_TENANT = (
    ("message_statuses", "message_pk", "messages"),
    ("webhook_attempts", "webhook_pk", "webhooks"),
)


def _tenant_fk(table: str) -> tuple[str, str, str, list[str], list[str]]:
    return (f"fk_{table}_tenant_id_tenants", table, "tenants", ["tenant_id"], ["id"])


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "application_routes",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_application_routes"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_application_routes_tenant_id_tenants"),
    )  # fmt: skip
    op.execute(
        "INSERT INTO application_routes (id, tenant_id) SELECT id, tenant_id FROM applications"
    )
    op.create_table(
        "account_routes",
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("provider", "external_id", name="pk_account_routes"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_account_routes_tenant_id_tenants"),
    )  # fmt: skip
    op.execute(
        "INSERT INTO account_routes (provider, external_id, tenant_id) "
        "SELECT provider, external_id, tenant_id FROM accounts"
    )
    for table, column, parent in _NEW_TENANT:
        op.add_column(table, sa.Column("tenant_id", Id, nullable=True))
        op.execute(
            f"UPDATE {table} SET tenant_id = "  # noqa: S608 - this module's names
            f"(SELECT p.tenant_id FROM {parent} p WHERE p.pk = {table}.{column})"
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("tenant_id", existing_type=Id, nullable=False)
            name, _, referred, local, remote = _tenant_fk(table)
            batch.create_foreign_key(name, referred, local, remote, ondelete="CASCADE")
    if postgresql:
        _keys_with_tenant()


def _keys_with_tenant() -> None:
    for table, column, parent, _, _ in _PARENTS:
        op.drop_constraint(f"fk_{table}_{column}_{parent}", table, type_="foreignkey")
    for table in _TABLES:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["pk", "tenant_id"])
    for table, column in _UNIQUE:
        op.drop_constraint(f"uq_{table}_{column}", table, type_="unique")
        op.create_unique_constraint(f"uq_{table}_{column}_tenant_id", table, [column, "tenant_id"])
    op.drop_constraint("uq_accounts_provider_external_id", "accounts", type_="unique")
    for table, column, parent, key, ondelete in _PARENTS:
        op.create_foreign_key(
            f"fk_{table}_{column}_{parent}", table, parent,
            [column, "tenant_id"], [key, "tenant_id"],
            # SET NULL of the application only: the account keeps its tenant (PostgreSQL 15).
            ondelete=f"SET NULL ({column})" if ondelete == "SET NULL" else ondelete,
        )  # fmt: skip


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, parent, _, _ in _PARENTS:
            op.drop_constraint(f"fk_{table}_{column}_{parent}", table, type_="foreignkey")
        op.create_unique_constraint(
            "uq_accounts_provider_external_id", "accounts", ["provider", "external_id"]
        )
        for table, column in _UNIQUE:
            op.drop_constraint(f"uq_{table}_{column}_tenant_id", table, type_="unique")
            op.create_unique_constraint(f"uq_{table}_{column}", table, [column])
        for table in _TABLES:
            op.drop_constraint(f"pk_{table}", table, type_="primary")
            op.create_primary_key(f"pk_{table}", table, ["pk"])
        for table, column, parent, key, ondelete in _PARENTS:
            op.create_foreign_key(
                f"fk_{table}_{column}_{parent}", table, parent, [column], [key], ondelete=ondelete
            )
    for table, _, _ in _NEW_TENANT:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")
            batch.drop_column("tenant_id")
    op.drop_table("account_routes")
    op.drop_table("application_routes")
