"""SQLite's group commit (storage/db.py): the write units of work of one turn of the event loop
share one transaction, each a savepoint in it, committed once at the next turn. Each unit's
commit() returns only once that COMMIT is done (another connection sees the rows); a unit that
fails undoes only its own writes; a read never sees what an open group has written and not
committed; a COMMIT that fails fails every unit that waits for it."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import Engine, text

from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _file(engine: Engine) -> str:
    path = engine.url.database
    assert path
    return path


def _committed(engine: Engine, table: str = "t") -> list[int]:
    """What another connection sees: only what is committed."""
    other = sqlite3.connect(_file(engine))
    try:
        return sorted(v for (v,) in other.execute(f"SELECT v FROM {table}"))
    finally:
        other.close()


@pytest.fixture
def table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER NOT NULL)"))
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (v INTEGER NOT NULL, parent_id INTEGER REFERENCES parent (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
        )


@pytest.mark.usefixtures("table")
def test_units_of_one_turn_commit_together_and_a_failed_one_alone_is_undone(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    seen_after_commit: dict[int, list[int]] = {}

    async def unit(value: int) -> None:
        async with uow_factory(write=True) as uow:
            await uow.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
            if value == 2:
                raise ValueError("this unit fails")
            await uow.commit()
        seen_after_commit[value] = _committed(engine)

    async def scenario() -> list[BaseException | None]:
        return await asyncio.gather(*(unit(v) for v in (1, 2, 3)), return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert [type(o).__name__ for o in outcomes] == ["NoneType", "ValueError", "NoneType"]
    # Each commit() returned once the group's COMMIT was done: both rows already visible to
    # another connection when the first unit went on, the failed unit's never.
    assert seen_after_commit == {1: [1, 3], 3: [1, 3]}
    assert _committed(engine) == [1, 3]


@pytest.mark.usefixtures("table")
def test_a_read_sees_only_what_is_committed(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    async def writer() -> None:
        async with uow_factory(write=True) as uow:
            await uow.conn.execute("INSERT INTO t (v) VALUES (7)")
            await uow.commit()

    async def reader() -> list[int]:
        async with uow_factory() as uow:
            return [int(v) for (v,) in await uow.conn.fetchall("SELECT v FROM t")]

    async def scenario() -> tuple[list[int], list[int]]:
        # The reader runs while the writer's group is written and not yet committed.
        _, during = await asyncio.gather(writer(), reader())
        return during, await reader()

    assert asyncio.run(scenario()) == ([], [7])
    assert _committed(engine) == [7]


@pytest.mark.usefixtures("table")
def test_a_commit_that_fails_fails_every_unit_of_its_group(
    uow_factory: SqlUnitOfWorkFactory, engine: Engine
) -> None:
    """A deferred foreign key is checked at COMMIT (the schema has none: only this test's
    table): one unit's bad row fails the group's COMMIT, and both units are told."""

    async def unit(statement: str) -> None:
        async with uow_factory(write=True) as uow:
            await uow.conn.execute(statement)
            await uow.commit()

    async def scenario() -> list[BaseException | None]:
        return await asyncio.gather(
            unit("INSERT INTO t (v) VALUES (1)"),
            unit("INSERT INTO child (v, parent_id) VALUES (1, 404)"),
            return_exceptions=True,
        )

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes), outcomes
    assert _committed(engine) == []
    assert _committed(engine, "child") == []

    async def afterwards() -> None:  # the connection goes on serving
        await unit("INSERT INTO t (v) VALUES (2)")

    asyncio.run(afterwards())
    assert _committed(engine) == [2]
