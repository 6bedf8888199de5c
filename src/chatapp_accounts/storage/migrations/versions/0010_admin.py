"""The admin API (docs/operations.md): operators' tokens and the audit log.

- `admin_tokens`: a name, the SHA-256 of the token (never the token), its scopes (space
  separated), when it was made and whether it is revoked.
- `audit_log`: who (a token's name, or `cli`), what (an action's name), which tenant (its
  api_key), when (seconds since the epoch), the request id, and the outcome (`ok`, or the
  error), for every change an operator makes.

Both belong to no tenant: reference tables on PostgreSQL (docs/scaling.md). A suspended tenant
is a revoked one (`tenants.revoked`): no new column.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_admin_tokens"),
        sa.UniqueConstraint("name", name="uq_admin_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_admin_tokens_token_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(32), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("admin_tokens")
