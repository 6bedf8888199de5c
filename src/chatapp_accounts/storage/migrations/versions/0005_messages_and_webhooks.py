"""Messages, their statuses, and the webhook outbox with its delivery attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
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
        "messages",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("root_pk", sa.BigInteger(), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_type", sa.String(16), nullable=False),
        sa.Column("to_id", sa.Text(), nullable=False),
        sa.Column("from_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("application_id", sa.String(100), nullable=True),
        sa.Column("client_ref", sa.Text(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("workflow", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_messages"),
        sa.UniqueConstraint("uuid", name="uq_messages_uuid"),
        _fk("messages", "tenant_id", "tenants.id"),
    )
    op.create_index("ix_messages_tenant_id_pk", "messages", ["tenant_id", "pk"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_table(
        "message_statuses",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_message_statuses"),
        _fk("message_statuses", "message_pk", "messages.pk"),
    )
    op.create_index("ix_message_statuses_message_pk", "message_statuses", ["message_pk"])
    op.create_table(
        "webhooks",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("order_key", sa.BigInteger(), nullable=False),
        sa.Column("application_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("first_attempt_at", sa.Float(), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_webhooks"),
        _fk("webhooks", "tenant_id", "tenants.id"),
        _fk("webhooks", "message_pk", "messages.pk"),
    )
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_webhooks_pending_due_at", "webhooks", ["due_at"],
        sqlite_where=pending, postgresql_where=pending,
    )  # fmt: skip
    op.create_index(
        "ix_webhooks_pending_order_key_pk", "webhooks", ["order_key", "pk"],
        sqlite_where=pending, postgresql_where=pending,
    )  # fmt: skip
    op.create_index("ix_webhooks_message_pk", "webhooks", ["message_pk"])
    op.create_table(
        "webhook_attempts",
        sa.Column("pk", Id, primary_key=True, autoincrement=True),
        sa.Column("webhook_pk", Id, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_webhook_attempts"),
        _fk("webhook_attempts", "webhook_pk", "webhooks.pk"),
    )
    op.create_index("ix_webhook_attempts_webhook_pk", "webhook_attempts", ["webhook_pk"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhooks")
    op.drop_table("message_statuses")
    op.drop_table("messages")
