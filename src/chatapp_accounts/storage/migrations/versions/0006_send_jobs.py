"""Send jobs: the hand-over between `POST /v1/messages` and the channel (docs/messages.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=f"fk_{table}_{column}_{referred}", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "send_jobs",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("first_attempt_at", sa.Float(), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("status_url", sa.Text(), nullable=True),
        sa.Column("failover", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_send_jobs"),
        sa.UniqueConstraint("message_pk", name="uq_send_jobs_message_pk"),
        _fk("send_jobs", "tenant_id", "tenants.id"),
        _fk("send_jobs", "message_pk", "messages.pk"),
    )
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_send_jobs_pending_due_at", "send_jobs", ["due_at"],
        sqlite_where=pending, postgresql_where=pending,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("send_jobs")
