"""Account counts per tenant and provider, kept by the database itself.

`total_items` of a list must not cost a scan of the tenant's accounts (a million of them is
tens of milliseconds). Triggers keep the counts on every insert and delete, whoever writes:
the service, the operator's tooling, or a bulk load.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER trg_accounts_count_insert AFTER INSERT ON accounts BEGIN
         INSERT INTO account_counts (tenant_id, provider, n)
         VALUES (NEW.tenant_id, NEW.provider, 1)
         ON CONFLICT (tenant_id, provider) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER trg_accounts_count_delete AFTER DELETE ON accounts BEGIN
         UPDATE account_counts SET n = n - 1
         WHERE tenant_id = OLD.tenant_id AND provider = OLD.provider;
       END""",
]

# PostgreSQL: statement-level triggers over transition tables, one grouped update per
# statement. A row-level trigger would update the same counter row once per inserted row, and
# within one transaction (a bulk COPY) every update leaves a new row version behind.
_POSTGRES_TRIGGERS = [
    """CREATE FUNCTION chatapp_count_inserted_accounts() RETURNS trigger AS $$
       BEGIN
         INSERT INTO account_counts (tenant_id, provider, n)
         SELECT tenant_id, provider, COUNT(*) FROM inserted GROUP BY tenant_id, provider
         ON CONFLICT (tenant_id, provider) DO UPDATE SET n = account_counts.n + EXCLUDED.n;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE FUNCTION chatapp_count_deleted_accounts() RETURNS trigger AS $$
       BEGIN
         UPDATE account_counts c SET n = c.n - d.n
         FROM (SELECT tenant_id, provider, COUNT(*) AS n FROM deleted
               GROUP BY tenant_id, provider) d
         WHERE c.tenant_id = d.tenant_id AND c.provider = d.provider;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER trg_accounts_count_insert AFTER INSERT ON accounts
       REFERENCING NEW TABLE AS inserted
       FOR EACH STATEMENT EXECUTE FUNCTION chatapp_count_inserted_accounts()""",
    """CREATE TRIGGER trg_accounts_count_delete AFTER DELETE ON accounts
       REFERENCING OLD TABLE AS deleted
       FOR EACH STATEMENT EXECUTE FUNCTION chatapp_count_deleted_accounts()""",
]


def upgrade() -> None:
    op.create_table(
        "account_counts",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "provider", name="pk_account_counts"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_account_counts_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO account_counts (tenant_id, provider, n) "
        "SELECT tenant_id, provider, COUNT(*) FROM accounts GROUP BY tenant_id, provider"
    )
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_insert ON accounts")
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_delete ON accounts")
        op.execute("DROP FUNCTION IF EXISTS chatapp_count_inserted_accounts()")
        op.execute("DROP FUNCTION IF EXISTS chatapp_count_deleted_accounts()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_insert")
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_delete")
    op.drop_table("account_counts")
