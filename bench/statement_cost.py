"""What one PostgreSQL statement costs the server's process, in CPU and wall time, by driver and
by way of using it: the figures behind docs/driver.md. Runs the tenant lookup of Basic auth (and
inserts into a temporary table) against a throwaway database:

    .venv/bin/python bench/statement_cost.py [--runs N] [--via-proxy [--delay-ms MS]]
        [--count N] [--loop uvloop|asyncio] [--postgres-url URL]

Per statement, in this process (PostgreSQL's own CPU is not counted):
- psycopg: `connection.execute` (a new cursor each time); one cursor for every statement (what
  storage/postgres.py does); psycopg_pool, 32 tasks borrowing 8 connections as requests do, a
  borrow per statement; a transaction (BEGIN, two lookups, COMMIT) as four round trips, and the
  same sent in one flush (`async with conn.pipeline()`), reported per lookup;
- asyncpg (the `dev` extra; skipped when missing): `fetchrow` on one connection; its pool,
  32 tasks on 8 connections, as it comes (a reset query on every release) and with the reset
  skipped (`create_pool(reset=...)`); the same transaction (four round trips);
- inserts, per row, on psycopg: 100 single-row INSERTs; one INSERT of 100 rows; `executemany`
  of 100 rows (which psycopg sends as one pipeline).

`--via-proxy` reaches PostgreSQL through bench/delay_proxy.py, `--delay-ms` (1) each way: the
wall time of a database on another host. `--runs N` repeats everything N times and ends with
the median (and the range) of each figure, as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from chatapp_accounts.storage.engine import make_engine, normalise_url
from chatapp_accounts.storage.migrate import upgrade

SQL = "SELECT id, api_key, secret_hash, revoked, created_at FROM tenants WHERE api_key = %s"
TASKS, POOL = 32, 8


def _spread(borrower: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[int]]:
    """n statements over TASKS tasks at once, each running `borrower` for its share: how many
    ran."""

    async def tasks(n: int) -> int:
        await asyncio.gather(*(borrower(n // TASKS) for _ in range(TASKS)))
        return n // TASKS * TASKS

    return tasks


BATCH = 100  # rows per multi-row INSERT / executemany
INSERT_ONE = "INSERT INTO bench_rows (id, name) VALUES (%s, %s)"
INSERT_MANY = "INSERT INTO bench_rows (id, name) VALUES " + ", ".join(["(%s, %s)"] * BATCH)
HERE = Path(__file__).resolve().parent

# label -> one (CPU µs, wall µs) per run
Results = dict[str, list[tuple[float, float]]]


class Bench:
    def __init__(self, count: int) -> None:
        self.count = count
        self.results: Results = {}

    async def timed(
        self, label: str, n: int, run: Callable[[int], Awaitable[int]], warm: int = 0
    ) -> None:
        """`run(n)` does n iterations and returns how many units (statements, rows) they were;
        a warm-up of `warm` iterations (a tenth, at least 10, by default) goes first."""
        await run(warm or max(n // 10, 10))
        wall, cpu = time.perf_counter(), time.process_time()
        units = await run(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cpu_us, wall_us = cpu / units * 1e6, wall / units * 1e6
        self.results.setdefault(label, []).append((cpu_us, wall_us))
        print(f"{label:58s} {cpu_us:7.1f} µs CPU {wall_us:8.1f} µs wall", flush=True)


async def _psycopg(bench: Bench, url: str) -> None:
    count = bench.count
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def fresh_cursors(n: int) -> int:
        for _ in range(n):
            await (await conn.execute(SQL, ("x",))).fetchone()
        return n

    cursor, control, second = conn.cursor(), conn.cursor(), conn.cursor()

    async def one_cursor(n: int) -> int:
        for _ in range(n):
            await cursor.execute(SQL, ("x",))
            await cursor.fetchone()
        return n

    async def transactions(n: int) -> int:
        for _ in range(n):
            await control.execute("BEGIN")
            await cursor.execute(SQL, ("x",))
            await cursor.fetchone()
            await cursor.execute(SQL, ("y",))
            await cursor.fetchone()
            await control.execute("COMMIT")
        return 2 * n

    async def pipelined(n: int) -> int:
        for _ in range(n):
            async with conn.pipeline():  # one flush, one sync: results come back together
                await control.execute("BEGIN")
                await cursor.execute(SQL, ("x",))
                await second.execute(SQL, ("y",))
                await control.execute("COMMIT")
            await cursor.fetchone()
            await second.fetchone()
        return 2 * n

    await bench.timed("psycopg connection.execute (a cursor each)", count, fresh_cursors)
    await bench.timed("psycopg one cursor (storage/postgres.py)", count, one_cursor)
    await bench.timed("psycopg transaction, 4 round trips, per stmt", count // 2, transactions)
    await bench.timed("psycopg transaction, pipeline, per stmt", count // 2, pipelined)
    await conn.close()

    pool = AsyncConnectionPool(url, kwargs={"autocommit": True}, min_size=POOL, max_size=POOL,
                               open=False)  # fmt: skip
    await pool.open(wait=True)
    cursors: dict[Any, psycopg.AsyncCursor[Any]] = {}  # one per connection, as the project

    async def borrower(n: int) -> None:
        for _ in range(n):
            async with pool.connection() as c:
                cur = cursors.get(c)
                if cur is None:
                    cur = cursors[c] = c.cursor()
                await cur.execute(SQL, ("x",))
                await cur.fetchone()

    await bench.timed(f"psycopg_pool, {TASKS} tasks on {POOL} connections", count,
                      _spread(borrower), warm=TASKS * 4)  # fmt: skip
    await pool.close()


async def _inserts(bench: Bench, url: str) -> None:
    count = bench.count
    batches = max(count // BATCH, 20)
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    await conn.execute("CREATE TEMPORARY TABLE bench_rows (id bigint, name text)")
    cursor = conn.cursor()
    next_id = iter(range(1 << 62))

    async def single(n: int) -> int:
        for _ in range(n):
            await cursor.execute(INSERT_ONE, (next(next_id), "row"))
        return n

    async def multi_row(n: int) -> int:
        for _ in range(n):
            params: list[Any] = []
            for _ in range(BATCH):
                params += (next(next_id), "row")
            await cursor.execute(INSERT_MANY, params)
        return n * BATCH

    async def executemany(n: int) -> int:
        for _ in range(n):
            await cursor.executemany(INSERT_ONE, [(next(next_id), "row") for _ in range(BATCH)])
        return n * BATCH

    await bench.timed("psycopg INSERT, 1 row each, per row", count, single)
    await bench.timed(f"psycopg INSERT of {BATCH} rows, per row", batches, multi_row, warm=10)
    await bench.timed(f"psycopg executemany of {BATCH} rows, per row", batches, executemany,
                      warm=10)  # fmt: skip
    await conn.close()


async def _no_reset(conn: Any) -> None:
    """The pool's reset, skipped: the connection goes back as it is (asyncpg still rolls back a
    transaction left open, without a round trip when there is none)."""


async def _asyncpg(bench: Bench, url: str) -> None:
    import asyncpg  # type: ignore[import-untyped,import-not-found,unused-ignore]

    count = bench.count
    sql = SQL.replace("%s", "$1")
    conn = await asyncpg.connect(url)

    async def loop(n: int) -> int:
        for _ in range(n):
            await conn.fetchrow(sql, "x")
        return n

    async def transactions(n: int) -> int:
        for _ in range(n):
            async with conn.transaction():
                await conn.fetchrow(sql, "x")
                await conn.fetchrow(sql, "y")
        return 2 * n

    await bench.timed("asyncpg fetchrow, one connection", count, loop)
    await bench.timed("asyncpg transaction, 4 round trips, per stmt", count // 2, transactions)
    await conn.close()

    pools: list[tuple[str, dict[str, Any]]] = [("reset on release", {})]
    if "reset" in inspect.signature(asyncpg.create_pool).parameters:
        pools.append(("reset skipped", {"reset": _no_reset}))
    else:
        print(f"asyncpg {asyncpg.__version__}'s create_pool takes no `reset`: row skipped")
    for name, options in pools:
        pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL, **options)

        async def borrower(n: int, pool: Any = pool) -> None:
            for _ in range(n):
                async with pool.acquire() as c:
                    await c.fetchrow(sql, "x")

        await bench.timed(f"asyncpg pool, {TASKS} tasks on {POOL}, {name}", count,
                          _spread(borrower), warm=TASKS * 4)  # fmt: skip
        await pool.close()


async def _all(bench: Bench, url: str, runs: int) -> None:
    has_asyncpg = importlib.util.find_spec("asyncpg") is not None
    for run in range(1, runs + 1):
        print(f"-- run {run} of {runs}", flush=True)
        await _psycopg(bench, url)
        if has_asyncpg:
            await _asyncpg(bench, url)
        else:
            print("asyncpg is not installed (it is in the `dev` extra): its rows are skipped")
        await _inserts(bench, url)


def _report(results: Results, runs: int, where: str) -> None:
    print(f"\nMedian of {runs} run(s), {where}; range in brackets:\n")
    print("| driver, use | CPU µs | wall µs |")
    print("|---|---|---|")
    for label, figures in results.items():
        cells = []
        for values in zip(*figures, strict=True):
            cell = f"{statistics.median(values):.1f}"
            if len(values) > 1:
                cell += f" ({min(values):.1f}-{max(values):.1f})"
            cells.append(cell)
        print(f"| {label} | {cells[0]} | {cells[1]} |")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_proxy(url: str, delay_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    """bench/delay_proxy.py in front of the database of `url`; the URL through it."""
    target = urlsplit(url)
    port = _free_port()
    proxy = subprocess.Popen(
        [sys.executable, str(HERE / "delay_proxy.py"), str(port),
         target.hostname or "127.0.0.1", str(target.port or 5432), str(delay_ms)],
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proxy.poll() is not None or time.monotonic() > deadline:
                proxy.kill()
                raise SystemExit("bench/delay_proxy.py did not start") from None
            time.sleep(0.05)
    user = target.username or ""
    if target.password:
        user += f":{target.password}"
    netloc = f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"
    return proxy, target._replace(netloc=netloc).geturl()


def _run(loop: str, coro: Coroutine[Any, Any, None]) -> None:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--count", type=int, help="statements per figure (5000; 500 through the proxy)"
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--via-proxy", action="store_true", help="through bench/delay_proxy.py")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="the proxy's, each way")
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop: uvloop, as the server runs (uvicorn picks it), or asyncio's own",
    )
    args = parser.parse_args()
    count = args.count or (500 if args.via_proxy else 5000)
    admin_url = normalise_url(args.postgres_url).replace("postgresql+psycopg", "postgresql")
    name = f"chatapp_cost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    proxy = None
    where = f"{args.loop}, PostgreSQL on loopback"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        if args.via_proxy:
            proxy, url = _start_proxy(url, args.delay_ms)
            where = f"{args.loop}, PostgreSQL {args.delay_ms:g} ms away each way (delay_proxy)"
        bench = Bench(count)
        _run(args.loop, _all(bench, url, args.runs))
        _report(bench.results, args.runs, where)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(10)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
