"""What one PostgreSQL statement costs the server's process, in CPU time: the driver's share of a
request (docs/benchmark.md). Runs the tenant lookup of Basic auth against a throwaway database:

    .venv/bin/python bench/statement_cost.py [--postgres-url URL] [--count N]

- `connection.execute`: psycopg's asyncio connection, a new cursor per statement;
- `one cursor`: one cursor for every statement (what storage/postgres.py does);
- `pool, 32 tasks`: 32 coroutines borrowing 8 connections from psycopg_pool, as requests do;
- and, where asyncpg happens to be installed (it is no dependency of the project), the same
  loop and pool with it, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
import uuid
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from chatapp_accounts.storage.engine import make_engine, normalise_url
from chatapp_accounts.storage.migrate import upgrade

SQL = "SELECT id, api_key, secret_hash, revoked, created_at FROM tenants WHERE api_key = %s"
TASKS, POOL = 32, 8


async def _timed(label: str, count: int, run: Callable[[], Awaitable[None]]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:32s} {cpu / count * 1e6:7.1f} µs CPU, {wall / count * 1e6:7.1f} µs wall")


async def _psycopg(url: str, count: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def fresh_cursors() -> None:
        for _ in range(count):
            await (await conn.execute(SQL, ("x",))).fetchone()

    cursor = conn.cursor()

    async def one_cursor() -> None:
        for _ in range(count):
            await cursor.execute(SQL, ("x",))
            await cursor.fetchone()

    await _timed("psycopg connection.execute", count, fresh_cursors)
    await _timed("psycopg one cursor", count, one_cursor)
    await conn.close()
    pool = AsyncConnectionPool(url, kwargs={"autocommit": True}, min_size=POOL, max_size=POOL,
                               open=False)  # fmt: skip
    await pool.open(wait=True)

    async def borrower(n: int) -> None:
        for _ in range(n):
            async with pool.connection() as c:
                await (await c.execute(SQL, ("x",))).fetchone()

    async def tasks() -> None:
        await asyncio.gather(*(borrower(count // TASKS) for _ in range(TASKS)))

    await _timed(f"psycopg pool, {TASKS} tasks", count // TASKS * TASKS, tasks)
    await pool.close()


async def _asyncpg(url: str, count: int) -> None:
    import asyncpg  # type: ignore[import-not-found]

    sql = SQL.replace("%s", "$1")
    conn = await asyncpg.connect(url)

    async def loop() -> None:
        for _ in range(count):
            await conn.fetchrow(sql, "x")

    await _timed("asyncpg fetchrow", count, loop)
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)

    async def borrower(n: int) -> None:
        for _ in range(n):
            async with pool.acquire() as c:
                await c.fetchrow(sql, "x")

    async def tasks() -> None:
        await asyncio.gather(*(borrower(count // TASKS) for _ in range(TASKS)))

    await _timed(f"asyncpg pool, {TASKS} tasks", count // TASKS * TASKS, tasks)
    await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    admin_url = normalise_url(args.postgres_url).replace("postgresql+psycopg", "postgresql")
    name = f"chatapp_cost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        asyncio.run(_psycopg(url, args.count))
        if importlib.util.find_spec("asyncpg") is not None:
            asyncio.run(_asyncpg(url, args.count))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
