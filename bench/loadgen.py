"""A small asyncio HTTP/1.1 load generator, for machines without wrk. Keep-alive connections,
a fixed duration, every latency recorded. Run as a separate process by bench/run.py:

    python bench/loadgen.py URL SECONDS CONNECTIONS SCENARIO_JSON
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit


async def worker(
    host: str,
    port: int,
    make: Any,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    if make is None:
        return
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            request = make()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def request_maker(url: str, scenario: dict[str, Any], worker: int, connections: int) -> Any:
    """The requests of one connection. Link/unlink: each connection links and unlinks accounts
    of its own (k = worker, worker + connections, ...), so an unlink is only sent once its
    link was answered: requests on different connections have no order."""
    parts = urlsplit(url)
    headers = "".join(f"{k}: {v}\r\n" for k, v in scenario.get("headers", {}).items())
    counter = [0]
    state: dict[int, bool] = {}
    mine = list(range(worker, scenario.get("link_accounts", 0), connections))
    if scenario.get("kind") == "link_unlink" and not mine:
        return None  # more connections than accounts: this one stays idle

    def make() -> bytes:
        counter[0] += 1
        n = counter[0]
        method, path, body = "GET", parts.path + (f"?{parts.query}" if parts.query else ""), b""
        kind = scenario.get("kind", "get")
        if kind == "create":
            method = "POST"
            body = json.dumps(
                {"external_id": f"new-{time.time_ns()}-{n}", "access_token": f"t{n}"}
            ).encode()
        elif kind == "send":
            method, body = "POST", json.dumps(scenario["body"]).encode()
        elif kind == "link_unlink":
            k = mine[n % len(mine)]
            ext = f"{(scenario.get('link_first', 0) + k) * 4 + 1:09d}"
            path = f"{scenario['prefix']}/messenger/{ext}/applications"
            if state.get(k):
                method, path = "DELETE", f"{path}/{scenario['app']}"
            else:
                method, body = "POST", json.dumps({"application": scenario["app"]}).encode()
            state[k] = not state.get(k)
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}{extra}\r\n"
        ).encode() + body

    return make


async def main() -> None:
    url, seconds, connections, scenario = (
        sys.argv[1],
        float(sys.argv[2]),
        int(sys.argv[3]),
        json.loads(sys.argv[4]),
    )
    parts = urlsplit(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(
            worker(
                parts.hostname or "127.0.0.1",
                parts.port or 80,
                request_maker(url, scenario, i, connections),
                deadline,
                latencies,
                statuses,
            )
            for i in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "rps": len(latencies) / elapsed,
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "statuses": statuses,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
