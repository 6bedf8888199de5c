"""Retention in two steps (docs/messages.md, "Retention"): a message's content is removed
(CHATAPP_MESSAGE_CONTENT_RETENTION_DAYS, or on demand: the Redact API) long before the message
itself (CHATAPP_MESSAGE_RETENTION_DAYS).

- `messages.content_removed_at`: when its content (and its webhooks' bodies, its attempts'
  stored requests and answers) was removed; NULL: it is still there.
- `ix_messages_content_due`: the messages whose content is still there, by age (partial): a
  batch of content removal reads the oldest few, never the redacted ones before them.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

_KEPT = sa.text("content_removed_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("content_removed_at", sa.Float(), nullable=True))
    op.create_index(
        "ix_messages_content_due",
        "messages",
        ["created_at"],
        sqlite_where=_KEPT,
        postgresql_where=_KEPT,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_content_due", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("content_removed_at")
