"""Account counts in shards on PostgreSQL, so that concurrent writers do not queue on one row.

Migration 0002 kept one counter row per tenant and provider. On PostgreSQL every transaction
that adds or removes an account of a tenant updated that row and held its lock until it
committed: a tenant's creates ran one at a time, a round trip to the database and a WAL flush
each (62 creates/s with 1 ms each way to the database). Now each connection counts into a shard
of its own (its backend's pid modulo 16), and a count is the sum of the shards; a shard may go
negative (an account counted into one shard and removed through another), the sum never does.
SQLite has one writer at a time: it keeps a single shard, 0.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER trg_accounts_count_insert AFTER INSERT ON accounts BEGIN
         INSERT INTO account_counts (tenant_id, provider, shard, n)
         VALUES (NEW.tenant_id, NEW.provider, 0, 1)
         ON CONFLICT (tenant_id, provider, shard) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER trg_accounts_count_delete AFTER DELETE ON accounts BEGIN
         UPDATE account_counts SET n = n - 1
         WHERE tenant_id = OLD.tenant_id AND provider = OLD.provider AND shard = 0;
       END""",
]

# Statement-level triggers over transition tables, as in 0002: one grouped upsert a statement.
_POSTGRES_TRIGGERS = [
    """CREATE OR REPLACE FUNCTION chatapp_count_inserted_accounts() RETURNS trigger AS $$
       BEGIN
         INSERT INTO account_counts (tenant_id, provider, shard, n)
         SELECT tenant_id, provider, pg_backend_pid() % 16, COUNT(*)
         FROM inserted GROUP BY tenant_id, provider
         ON CONFLICT (tenant_id, provider, shard)
         DO UPDATE SET n = account_counts.n + EXCLUDED.n;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION chatapp_count_deleted_accounts() RETURNS trigger AS $$
       BEGIN
         INSERT INTO account_counts (tenant_id, provider, shard, n)
         SELECT d.tenant_id, d.provider, pg_backend_pid() % 16, -COUNT(*)
         FROM deleted d
         WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = d.tenant_id)  -- not a tenant's cascade
         GROUP BY d.tenant_id, d.provider
         ON CONFLICT (tenant_id, provider, shard)
         DO UPDATE SET n = account_counts.n + EXCLUDED.n;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER trg_accounts_count_insert AFTER INSERT ON accounts
       REFERENCING NEW TABLE AS inserted
       FOR EACH STATEMENT EXECUTE FUNCTION chatapp_count_inserted_accounts()""",
    """CREATE TRIGGER trg_accounts_count_delete AFTER DELETE ON accounts
       REFERENCING OLD TABLE AS deleted
       FOR EACH STATEMENT EXECUTE FUNCTION chatapp_count_deleted_accounts()""",
]


def _drop_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_insert ON accounts")
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_delete ON accounts")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_insert")
        op.execute("DROP TRIGGER IF EXISTS trg_accounts_count_delete")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_triggers(dialect)
    op.drop_table("account_counts")
    op.create_table(
        "account_counts",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "provider", "shard", name="pk_account_counts"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_account_counts_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.execute(
        "INSERT INTO account_counts (tenant_id, provider, shard, n) "
        "SELECT tenant_id, provider, 0, COUNT(*) FROM accounts GROUP BY tenant_id, provider"
    )
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("0003 is not downgraded: restore a backup taken before it")
