"""Live channels (docs/providers.md): what a WhatsApp account needs to send through Meta's
Cloud API, and what matches providers' callbacks to messages.

- `accounts.phone_number_id`, `accounts.waba_id`: a WhatsApp number's Cloud API ids (its token is
  the account's sealed `access_token`, rotated with the encryption keys like Messenger's).
- `phone_number_routes`: a reference table, phone_number_id -> (tenant, number): Meta's callbacks
  name the receiving number by its id only.
- `provider_messages`: the provider's id of each message sent or received through a live channel
  (wamid, Messenger mid, RBM messageId), with the account and the customer and when the provider
  took it (Messenger's watermarks compare with it). Its key makes a provider's duplicate inbound
  message a no-op. Written for live channels only: the sandbox pays nothing for it.
- `held_statuses`: a status whose provider id is not known yet (the callback came before the
  send's outcome was recorded): applied once it is, dropped after 60 s.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                   name=f"fk_{table}_tenant_id_tenants")  # fmt: skip


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"

    def keys(*columns: str) -> list[str]:
        return [*columns, "tenant_id"] if postgresql else list(columns)

    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("phone_number_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("waba_id", sa.String(100), nullable=True))
    op.create_table(
        "phone_number_routes",
        sa.Column("phone_number_id", sa.String(100), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("phone_number_id", name="pk_phone_number_routes"),
        _tenant("phone_number_routes"),
    )
    op.create_table(
        "provider_messages",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("message_pk", Id, nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*keys("channel", "provider_id"), name="pk_provider_messages"),
        _tenant("provider_messages"),
        sa.ForeignKeyConstraint(
            keys("message_pk"),
            [f"messages.{c}" for c in keys("pk")],
            ondelete="CASCADE",
            name="fk_provider_messages_message_pk_messages",
        ),
    )
    op.create_index(
        "ix_provider_messages_tenant_id", "provider_messages",
        ["tenant_id", "account", "peer", "at"],
    )  # fmt: skip
    op.create_index("ix_provider_messages_message_pk", "provider_messages", ["message_pk"])
    op.create_table(
        "held_statuses",
        sa.Column("pk", Id, autoincrement=True, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*keys("pk"), name="pk_held_statuses"),
        _tenant("held_statuses"),
    )
    op.create_index("ix_held_statuses_channel", "held_statuses", ["channel", "provider_id"])
    op.create_index("ix_held_statuses_received_at", "held_statuses", ["received_at"])


def downgrade() -> None:
    op.drop_table("held_statuses")
    op.drop_table("provider_messages")
    op.drop_table("phone_number_routes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("waba_id")
        batch.drop_column("phone_number_id")
