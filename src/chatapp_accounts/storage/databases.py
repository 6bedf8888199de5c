"""The database of a URL's engine: SQLite's connections (db.py) or PostgreSQL's (postgres.py).
Here, not in db.py, so that neither of those two imports the other."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from .db import Database, SqliteDatabase


def open_database(
    engine: Engine,
    *,
    pool_size: int,
    pool_timeout: float,
    on_connections: Callable[[int], None] | None = None,
) -> Database:
    if engine.dialect.name == "postgresql":
        from .postgres import PostgresDatabase  # psycopg is imported by those who use it

        return PostgresDatabase(
            engine, size=pool_size, timeout=pool_timeout, on_connections=on_connections
        )
    return SqliteDatabase(engine, on_connections)
