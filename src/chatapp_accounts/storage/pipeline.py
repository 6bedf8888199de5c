"""Single-statement reads on PostgreSQL that overlap: libpq's pipeline mode, on the event loop.

A read on the blocking connection (db.py) holds the event loop for a whole round trip to the
server, so one process answers one PostgreSQL read at a time. The hot reads (GET of one account,
with either kind of credentials) go here instead: the reads asked for during one turn of the
event loop are sent together at the end of the turn, in one write, as one pipeline; the loop goes
on with other requests, and when the server's answers arrive on the socket each waiting request
is given its row. One connection per process, no thread, no pool.

Only reads that stand alone use it: each is one statement, outside any transaction (autocommit),
so it sees everything committed before it was sent, which includes every write already answered.
Statements are prepared once per connection. psycopg still does the connecting and the decoding
of rows (its `Transformer`, binary results); this module only orders the traffic.

Failures: an error in one statement fails that request (a logged 500, as on the blocking path)
and the statements queued behind it in the same pipeline are sent again. A broken connection, or
a pipeline unanswered for `timeout` seconds (a server or network that hangs), fails every waiting
request with ServiceUnavailable (503) and is dropped; the next read opens a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer

from ..domain.errors import ServiceUnavailable

log = logging.getLogger("chatapp_accounts.storage")

_BINARY = pq.Format.BINARY
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_PIPELINE_ABORTED = pq.ExecStatus.PIPELINE_ABORTED
_BAD = pq.ConnStatus.BAD
_SEVERITY = pq.DiagnosticField.SEVERITY_NONLOCALIZED

Row = tuple[Any, ...]


class _Read:
    __slots__ = ("future", "many", "name", "params", "sql")

    def __init__(
        self, name: bytes, sql: bytes, params: list[bytes], future: asyncio.Future[Any], many: bool
    ) -> None:
        self.name, self.sql, self.params, self.future, self.many = name, sql, params, future, many


class _Prepare:
    """A statement's preparation, sent ahead of its first read: its result only tells of errors."""

    __slots__ = ("name",)

    def __init__(self, name: bytes) -> None:
        self.name = name


_SYNC = object()  # the end of one pipeline: its result is PIPELINE_SYNC


class PipelinedReads:
    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], *, timeout: float = 10.0
    ) -> None:
        self._connect = connect
        self._timeout = timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._pg: Any = None  # the connection's pq.PGconn
        self._socket = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[_Read] = []
        self._sent: deque[Any] = deque()  # _Read, _Prepare or _SYNC, in the order sent
        self._prepared: set[bytes] = set()
        self._statements: dict[str, tuple[bytes, bytes]] = {}  # sql: its name, its bytes
        self._results: list[Any] = []  # the current statement's results, until its None
        self._tx = Transformer()
        self._writing = False
        self.pipelines = 0  # pipelines sent, and reads in them: how much the batching saves
        self.reads = 0
        self._out: deque[float] = deque()  # when each pipeline still unanswered was sent
        self._watch: asyncio.TimerHandle | None = None  # one timer, for the oldest of them

    async def fetchone(self, sql: str, params: tuple[str, ...]) -> Row | None:
        """The first row of `sql` (written with $1, $2… placeholders; every parameter text)."""
        row: Row | None = await self._read(sql, params, False)
        return row

    async def fetchall(self, sql: str, params: tuple[str, ...]) -> list[Row]:
        """Every row of `sql`, as fetchone()."""
        rows: list[Row] = await self._read(sql, params, True)
        return rows

    def _read(self, sql: str, params: tuple[str, ...], many: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): start afresh
            self._queued = []
            self._drop(None)
            self._loop = loop
        statement = self._statements.get(sql)
        if statement is None:
            name = b"chatapp_hot_%d" % len(self._statements)
            statement = self._statements[sql] = (name, sql.encode())
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._send)
        self._queued.append(_Read(*statement, [p.encode() for p in params], future, many))
        return future

    # --- sending ----------------------------------------------------------------------------

    def _send(self) -> None:
        reads, self._queued = self._queued, []
        try:
            pg = self._pg if self._pg is not None else self._open()
            for read in reads:
                if read.name not in self._prepared:
                    pg.send_prepare(read.name, read.sql)
                    self._prepared.add(read.name)
                    self._sent.append(_Prepare(read.name))
                pg.send_query_prepared(read.name, read.params, result_format=_BINARY)
                self._sent.append(read)
            pg.pipeline_sync()
            self._sent.append(_SYNC)
            self._flush()
            self.pipelines += 1
            self.reads += len(reads)
            assert self._loop is not None
            self._out.append(self._loop.time())
            if self._watch is None:
                self._watch = self._loop.call_later(self._timeout, self._expire)
        except Exception as exc:  # noqa: BLE001 - the connection failed: fail and drop it
            self._drop(exc, reads)

    def _flush(self) -> None:
        if self._pg.flush() == 1:  # the socket's buffer is full: go on when it drains
            if not self._writing:
                assert self._loop is not None
                self._loop.add_writer(self._socket, self._on_writable)
                self._writing = True
        elif self._writing:
            assert self._loop is not None
            self._loop.remove_writer(self._socket)
            self._writing = False

    def _on_writable(self) -> None:
        try:
            self._flush()
        except Exception as exc:  # noqa: BLE001
            self._drop(exc)

    def _open(self) -> Any:
        conn = self._connect()  # used through libpq only: psycopg's transaction mode is moot
        pg = conn.pgconn
        pg.nonblocking = 1
        pg.enter_pipeline_mode()
        self._conn, self._pg, self._socket = conn, pg, pg.socket
        self._prepared.clear()
        assert self._loop is not None
        self._loop.add_reader(self._socket, self._on_readable)
        return pg

    # --- receiving --------------------------------------------------------------------------

    def _on_readable(self) -> None:
        pg = self._pg
        try:
            pg.consume_input()
            if pg.status == _BAD:
                raise psycopg.OperationalError("the connection was closed")
            while not pg.is_busy():
                result = pg.get_result()
                if result is None:
                    if not self._results:
                        break  # nothing more has arrived
                    self._done(self._results)
                    self._results = []
                elif result.status == _PIPELINE_SYNC:
                    head = self._sent.popleft()
                    assert head is _SYNC
                    self._out.popleft()
                else:
                    self._results.append(result)
        except Exception as exc:  # noqa: BLE001 - the connection failed
            self._drop(exc)

    def _done(self, results: list[Any]) -> None:
        """The results of the statement at the head of what was sent."""
        head = self._sent.popleft()
        result = results[-1]
        status = result.status
        if isinstance(head, _Prepare):
            if status != _COMMAND_OK:
                self._prepared.discard(head.name)
                if status != _PIPELINE_ABORTED:
                    log.error("preparing a read failed: %s", _message(result))
            return
        if head.future.done():  # its request was cancelled (the client went away)
            return
        if status == _TUPLES_OK:
            tx = self._tx
            if head.many:
                tx.set_pgresult(result)
                head.future.set_result(tx.load_rows(0, result.ntuples, tuple))
            elif result.ntuples == 0:
                head.future.set_result(None)
            else:
                tx.set_pgresult(result)
                head.future.set_result(tx.load_row(0, tuple))
        elif status == _PIPELINE_ABORTED:
            self._retry(head)  # an earlier statement of its pipeline failed, not this one
        elif result.error_field(_SEVERITY) in (b"FATAL", b"PANIC"):
            self._sent.appendleft(head)  # the server is ending the connection: not this read's
            raise psycopg.OperationalError(_message(result))  # fault, so a 503 for all waiting
        else:
            head.future.set_exception(psycopg.DatabaseError(_message(result)))

    def _expire(self) -> None:
        """A pipeline unanswered after `timeout` seconds: the server or the network is stuck."""
        self._watch = None
        if not self._out:
            return
        assert self._loop is not None
        due = self._out[0] + self._timeout
        if self._loop.time() >= due:
            self._drop(TimeoutError(f"no answer in {self._timeout:g} s"))
        else:
            self._watch = self._loop.call_at(due, self._expire)

    def _retry(self, read: _Read) -> None:
        if not self._queued:
            assert self._loop is not None
            self._loop.call_soon(self._send)
        self._queued.append(read)

    # --- failure ----------------------------------------------------------------------------

    def _drop(self, exc: BaseException | None, reads: Sequence[_Read] = ()) -> None:
        """Close the connection; every read waiting on it fails with ServiceUnavailable."""
        if exc is not None:
            log.error("PostgreSQL connection for reads failed: %s: %s", type(exc).__name__, exc)
        waiting = [*reads, *(s for s in self._sent if isinstance(s, _Read))]
        self._sent.clear()
        self._out.clear()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._results = []
        if self._loop is not None and self._socket >= 0 and not self._loop.is_closed():
            self._loop.remove_reader(self._socket)
            if self._writing:
                self._loop.remove_writer(self._socket)
        self._writing = False
        self._socket = -1
        conn, self._conn, self._pg = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - it is broken already
                pass
        for read in waiting:
            if not read.future.done() and not read.future.get_loop().is_closed():
                read.future.set_exception(ServiceUnavailable())

    def close(self) -> None:
        self._drop(None)


def _message(result: Any) -> str:
    message: bytes = result.error_message or b"unknown error"
    return message.decode("utf-8", "replace").strip()
