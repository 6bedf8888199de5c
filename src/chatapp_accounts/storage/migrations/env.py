"""Alembic environment. Run programmatically (storage/migrate.py passes a connection) or by
`alembic` from the repository root, which builds an engine from the settings."""

from __future__ import annotations

from typing import Any

from alembic import context

from chatapp_accounts.storage.tables import metadata_for

config = context.config


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata_for(connection.dialect.name),
        render_as_batch=True,  # ALTERs that SQLite cannot do are done by copying the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from chatapp_accounts.config import get_settings
    from chatapp_accounts.storage.engine import make_engine

    engine = make_engine(get_settings().database_url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
