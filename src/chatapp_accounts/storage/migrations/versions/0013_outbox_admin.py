"""The operator's outbox (docs/operations.md, issue 24): its listing filtered by tenant and
the redelivery of every failed webhook, without reading the whole outbox.

- `ix_webhooks_tenant_id_pk`: a tenant's webhooks, newest first (or in pk order, for a
  redelivery's batches); on PostgreSQL also what deleting a tenant cascades through.
- `ix_webhooks_failed_pk`: the failed webhooks, in pk order (partial: a few rows, changed only
  when a webhook fails or is redelivered).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_FAILED = sa.text("state = 'failed'")


def upgrade() -> None:
    op.create_index("ix_webhooks_tenant_id_pk", "webhooks", ["tenant_id", "pk"])
    op.create_index(
        "ix_webhooks_failed_pk", "webhooks", ["pk"], sqlite_where=_FAILED, postgresql_where=_FAILED
    )


def downgrade() -> None:
    op.drop_index("ix_webhooks_failed_pk", "webhooks")
    op.drop_index("ix_webhooks_tenant_id_pk", "webhooks")
