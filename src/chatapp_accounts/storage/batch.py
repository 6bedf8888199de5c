"""Writes in batches: the message pipeline's rows of many units of work in one transaction, in
as few statements as possible (docs/messages.md, "Batches").

The message repositories (storage/messages.py, storage/jobs.py) do not run their writes: they
describe them as `Insert` and `Update` operations, kept by the unit of work. At `commit()` a
unit that has no transaction of its own hands them to the database's `WriteBatch`, which takes
every unit committed during one turn of the event loop (and, while a batch is being written,
every unit committed meanwhile) and writes them together:

- the inserts of one statement shape as one multi-row `INSERT` (a hundred rows a statement);
- the updates of one table and set of columns as one `UPDATE ... SET c = CASE key WHEN ...`;
- all of it in one transaction (PostgreSQL: BEGIN, the statements and COMMIT in one pipeline,
  a single round trip; SQLite: one savepoint of its group commit), then each unit's `commit()`
  returns. A batch that fails is written again unit by unit, so that one bad unit fails alone.

Rows refer to messages by uuid (`(SELECT pk FROM messages WHERE uuid = ?)`), so no unit needs
the pk of a row that its own batch inserts. This is the only way these rows are written, at any
load: one unit alone is a batch of one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from .db import Connection, ConnectionUnavailable, Database

log = logging.getLogger("chatapp_accounts.storage")
CHUNK = 100  # rows per multi-row statement
FLUSHES = 2  # batches being written at once (PostgreSQL: each on a pooled connection)

# Statement order within a batch: a row is written after those it refers to.
TABLE_ORDER = {"messages": 0, "send_jobs": 1, "message_statuses": 2, "webhooks": 3,
               "webhook_attempts": 4, "provider_messages": 5, "held_statuses": 6}  # fmt: skip


class Insert(NamedTuple):
    """One row: `INSERT INTO <table> (<columns>) VALUES <row>`, `row` with `?` placeholders."""

    table: str
    columns: str
    row: str
    values: tuple[Any, ...]
    tail: str = ""  # after the rows: " ON CONFLICT DO NOTHING" for a row that may exist


class Update(NamedTuple):
    """`UPDATE <table> SET <column> = <value>, ... WHERE <key_column> = <key>`. Updates of one
    row in one batch: the last one's values win."""

    table: str
    key_column: str
    key: Any
    sets: tuple[tuple[str, Any], ...]


Op = Insert | Update
_Unit = tuple[Sequence[Op], asyncio.Future[None]]  # a unit's rows, and what its commit() awaits


def statements(ops: Iterable[Op], sql: Callable[[str], str]) -> list[tuple[str, list[Any]]]:
    """The fewest statements that make these writes, in an order that keeps references."""
    inserts: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
    updates: dict[tuple[str, str, tuple[str, ...]], dict[Any, tuple[Any, ...]]] = {}
    for op in ops:
        if isinstance(op, Insert):
            inserts.setdefault((op.table, op.columns, op.row, op.tail), []).append(op.values)
        else:
            names = tuple(c for c, _ in op.sets)
            keyed = updates.setdefault((op.table, op.key_column, names), {})
            keyed.pop(op.key, None)  # the later update of a row is the one kept
            keyed[op.key] = tuple(v for _, v in op.sets)
    out: list[tuple[str, list[Any]]] = []
    for (table, names_, row, tail), values in sorted(
        inserts.items(), key=lambda item: TABLE_ORDER.get(item[0][0], 99)
    ):
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            rows = ", ".join([row] * len(chunk))
            text = f"INSERT INTO {table} ({names_}) VALUES {rows}{tail}"  # noqa: S608 - this module's names
            out.append((sql(text), [v for r in chunk for v in r]))
    for (table, key_column, columns), by_key in sorted(
        updates.items(), key=lambda item: TABLE_ORDER.get(item[0][0], 99)
    ):
        items = list(by_key.items())
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            if len(chunk) == 1:
                sets = ", ".join(f"{c} = ?" for c in columns)
                params: list[Any] = [*chunk[0][1], chunk[0][0]]
            else:
                whens = " ".join(["WHEN ? THEN ?"] * len(chunk))
                sets = ", ".join(f"{c} = CASE {key_column} {whens} END" for c in columns)
                params = [
                    v for i in range(len(columns)) for key, vals in chunk for v in (key, vals[i])
                ]
                params += [key for key, _ in chunk]
            text = f"UPDATE {table} SET {sets} WHERE {key_column} IN ({marks})"  # noqa: S608 - this module's names
            out.append((sql(text), params))
    return out


async def write(conn: Connection, ops: Sequence[Op], sql: Callable[[str], str]) -> None:
    """These writes on a connection whose transaction is open (a unit of work's own)."""
    for text, params in statements(ops, sql):
        await conn.execute(text, params)


class WriteBatch:
    """The units committed while no batch could start yet, written together. `on_written`
    is told the tables a batch wrote (the senders and the dispatcher wake on theirs)."""

    def __init__(
        self,
        db: Database,
        on_written: Callable[[set[str]], None] | None = None,
        notify: Callable[[set[str]], Sequence[str]] | None = None,
    ) -> None:
        self._db = db
        self._pending: list[_Unit] = []
        self._scheduled = False
        self._flushing = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_written = on_written
        # Statements sent with a batch for the tables it wrote (PostgreSQL: NOTIFY).
        self._notify = notify

    async def commit(self, ops: Sequence[Op]) -> None:
        """Write `ops` with the other units' of this turn; return once committed (or raise
        what failed them: the unit was written alone and failed)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((ops, done))
        if not self._scheduled and self._flushing < FLUSHES:
            self._scheduled = True
            loop.call_soon(self._start)
        # Shielded: a request that goes away does not take its rows out of the batch.
        await asyncio.shield(done)

    def _start(self) -> None:
        self._scheduled = False
        if not self._pending or self._flushing >= FLUSHES:
            return
        units, self._pending = self._pending, []
        self._flushing += 1
        task = asyncio.get_running_loop().create_task(self._flush(units))
        self._tasks.add(task)
        # Counted down when the task ends, however it ends (cancelled before it ran, even).
        task.add_done_callback(lambda done: self._ended(done, units))

    def _ended(self, task: asyncio.Task[None], units: list[_Unit]) -> None:
        self._tasks.discard(task)
        self._flushing -= 1
        if task.cancelled():
            for _, done in units:
                _fail(done, asyncio.CancelledError())
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    async def _flush(self, units: list[_Unit]) -> None:
        try:
            await self._write([op for ops, _ in units for op in ops])
        except Exception as exc:  # noqa: BLE001 - each unit is told, or written alone
            if len(units) == 1 or self._db.is_disconnect(exc) or _unavailable(exc):
                for _, done in units:
                    _fail(done, exc)
                return
            for ops, done in units:
                try:
                    await self._write(ops)
                except Exception as alone:  # noqa: BLE001 - this unit's own failure
                    _fail(done, alone)
                else:
                    _succeed(done)
            return
        for _, done in units:
            _succeed(done)

    async def _write(self, ops: Sequence[Op]) -> None:
        db = self._db
        tables = {op.table for op in ops}
        batch = statements(ops, db.sql)
        if self._notify is not None:  # new rows only: other processes have nothing to do else
            inserted = {op.table for op in ops if isinstance(op, Insert)}
            batch += [(text, []) for text in self._notify(inserted)]
        conn = await db.acquire(write=True)
        broken: BaseException | None = None
        try:
            await conn.write_batch(batch)
        except BaseException as exc:
            broken = exc if db.is_disconnect(exc) else None
            raise
        finally:
            await db.release(conn, broken=broken is not None)
        if self.on_written is not None:
            self.on_written(tables)

    async def close(self) -> None:
        """Write what is pending and let the batches being written end."""
        while self._pending or self._tasks:
            if self._pending and not self._scheduled and self._flushing < FLUSHES:
                self._start()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0)  # a start is scheduled: let it run


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionUnavailable)


def _fail(done: asyncio.Future[None], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


def _succeed(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
