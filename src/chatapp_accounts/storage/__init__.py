"""Persistence: the engine, the tables, the repositories and the Alembic migrations."""
