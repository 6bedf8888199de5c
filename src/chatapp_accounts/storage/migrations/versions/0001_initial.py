"""Tenants, applications and accounts.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("api_key", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("api_key", name="uq_tenants_api_key"),
    )
    op.create_table(
        "applications",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("privacy", sa.Text(), nullable=False),
        sa.Column("has_messages", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_applications"),
        sa.UniqueConstraint("id", name="uq_applications_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_applications_tenant_id_tenants",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_applications_tenant_id_pk", "applications", ["tenant_id", "pk"])
    op.create_table(
        "accounts",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("access_token", sa.LargeBinary(), nullable=True),
        sa.Column("application_id", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_accounts"),
        sa.UniqueConstraint("provider", "external_id", name="uq_accounts_provider_external_id"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_accounts_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name="fk_accounts_application_id_applications",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_accounts_tenant_id_pk", "accounts", ["tenant_id", "pk"])
    op.create_index(
        "ix_accounts_tenant_id_provider_pk", "accounts", ["tenant_id", "provider", "pk"]
    )
    op.create_index("ix_accounts_application_id", "accounts", ["application_id"])


def downgrade() -> None:
    op.drop_table("accounts")
    op.drop_table("applications")
    op.drop_table("tenants")
