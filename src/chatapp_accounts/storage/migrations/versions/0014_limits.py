"""Per-tenant limits (docs/limits.md).

- `tenants.requests_per_second`, `tenants.messages_per_second`: the tenant's own limits; NULL:
  the settings' default. `ix_tenants_limited` (partial): the few tenants that have their own,
  which every process reads every second.
- `rate_windows`: how much of each tenant's limit on each API the processes have taken in
  each second (`at_second`, seconds since the epoch). Distributed by `tenant_id`, its key
  begins with it. No foreign key: a claim never fails on a tenant deleted meanwhile; rows
  older than a few seconds are deleted by every process. UNLOGGED on PostgreSQL: counts of the
  last few seconds need no WAL (a crash empties the table: the next second starts anew).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_LIMITED = sa.text("requests_per_second IS NOT NULL OR messages_per_second IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("requests_per_second", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("messages_per_second", sa.Integer(), nullable=True))
    op.create_index(
        "ix_tenants_limited", "tenants", ["id"], sqlite_where=_LIMITED, postgresql_where=_LIMITED
    )
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_windows",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("api", sa.String(16), nullable=False),
        sa.Column("at_second", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "api", "at_second", name="pk_rate_windows"),
        prefixes=unlogged,
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
    op.drop_index("ix_tenants_limited", "tenants")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("messages_per_second")
        batch.drop_column("requests_per_second")
