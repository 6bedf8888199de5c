"""The developer kit (docs/inbox.md): what the web inbox shows and the sandbox's fault switches.

- `messages.account`, `messages.peer`: the account's external id and the customer's, whichever
  way the message went, so that a conversation (tenant, channel, account, customer) is one index
  range (`ix_messages_conversation`); filled in for the messages already stored.
- `webhook_attempts.request_headers` (JSON: what was sent, the Authorization header included, so
  the inbox can show the signature the receiver got), `answer` (the first 2 KiB of the
  receiver's answer body) and `latency` (seconds).
- `accounts.sandbox_delay` (seconds the sandbox channel waits before it takes a send) and
  `accounts.sandbox_fail` (a failure it forces on every send: `rejected`, `undeliverable`):
  the fault switches of an account.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("account", sa.Text(), nullable=True))
        batch.add_column(sa.Column("peer", sa.Text(), nullable=True))
    op.execute(
        "UPDATE messages SET "
        "account = CASE WHEN direction = 'outbound' THEN from_id ELSE to_id END, "
        "peer = CASE WHEN direction = 'outbound' THEN to_id ELSE from_id END"
    )
    op.create_index(
        "ix_messages_conversation", "messages", ["tenant_id", "channel", "account", "peer", "pk"]
    )
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.add_column(sa.Column("request_headers", sa.Text(), nullable=True))
        batch.add_column(sa.Column("answer", sa.Text(), nullable=True))
        batch.add_column(sa.Column("latency", sa.Float(), nullable=True))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("sandbox_delay", sa.Float(), nullable=True))
        batch.add_column(sa.Column("sandbox_fail", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("sandbox_fail")
        batch.drop_column("sandbox_delay")
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.drop_column("latency")
        batch.drop_column("answer")
        batch.drop_column("request_headers")
    op.drop_index("ix_messages_conversation", "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("peer")
        batch.drop_column("account")
