"""The app's own work per request, without a server or a network: the ASGI app (behind uvicorn's
proxy-headers middleware, as served) called in a loop on a seeded SQLite database.

    .venv/bin/python bench/inprocess.py get_basic                  # microseconds per request
    .venv/bin/python bench/inprocess.py list_first --instructions  # instructions per request

Microseconds are noisy on a shared machine. `--instructions` runs the loop under valgrind's
callgrind twice (N and N/4 requests, the same warm-up) and divides the difference: a count that
repeats to within a fraction of a percent, whatever else the machine is doing, for comparing a
change with the code before it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = ("get_basic", "get_jwt", "list_first")


def _seed(folder: str) -> dict[str, str]:
    """A database of 10 thousand accounts, and the Authorization headers to read it with."""
    sys.path.insert(0, str(HERE))
    import jwt
    from run import seed  # the benchmark's own seeding

    from chatapp_accounts.security.tokens import new_key

    keys = new_key()
    url = f"sqlite:///{folder}/inprocess.sqlite3"
    s = seed(url, keys, 10_000)
    now = int(time.time())
    claims = {"application_id": s.application_id, "iat": now, "exp": now + 3600, "jti": "bench"}
    return {
        "url": url,
        "keys": keys,
        "basic": "Basic " + base64.b64encode(f"{s.api_key}:{s.api_secret}".encode()).decode(),
        "bearer": "Bearer " + jwt.encode(claims, s.private_key, algorithm="RS256"),
    }


def _run(scenario: str, requests: int, seeded: dict[str, str]) -> float:
    from run import UNREFUSED  # the limits counted, as the benchmark's servers count them

    os.environ.update(
        CHATAPP_DATABASE_URL=seeded["url"],
        CHATAPP_ENCRYPTION_KEYS=seeded["keys"],
        CHATAPP_ACCESS_LOG="true",
        **UNREFUSED,
    )
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from chatapp_accounts.api.app import create_app

    app = ProxyHeadersMiddleware(create_app(), trusted_hosts="127.0.0.1")
    authorization = seeded["bearer" if scenario == "get_jwt" else "basic"]
    path, query = "/beta/chatapp-accounts/messenger/000005001", b""
    if scenario == "list_first":
        path, query = "/beta/chatapp-accounts", b"page_size=20&page_number=1"
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", authorization.encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def loop(n: int) -> None:
        for _ in range(n):
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
                "scheme": "http", "method": "GET", "root_path": "", "path": path,
                "raw_path": path.encode(), "query_string": query, "headers": headers,
            }  # fmt: skip
            await app(scope, receive, send)

    async def main() -> float:
        await loop(200)  # warm up: statement caches, the JWT cache, the secret memo
        gc.collect()
        gc.freeze()  # as the server's start-up does
        start = time.perf_counter()
        await loop(requests)
        return (time.perf_counter() - start) / requests

    seconds = asyncio.run(main())
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return seconds


def _instructions(scenario: str, requests: int, seeded_file: Path) -> float:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")

    def count(n: int) -> int:
        out = subprocess.run(
            [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             __file__, scenario, "--requests", str(n), "--seeded", str(seeded_file)],
            capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts every run
        )  # fmt: skip
        return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]

    return (count(requests) - count(requests // 4)) / (requests - requests // 4)


def _quietly(run: Any) -> Any:
    """The access log goes to stderr, as the server's does; here, away from the figures."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    os.dup2(devnull, 2)
    try:
        return run()
    finally:
        os.dup2(saved, 2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--instructions", action="store_true", help="count them with callgrind")
    parser.add_argument("--seeded", type=Path, help=argparse.SUPPRESS)  # --instructions' own runs
    args = parser.parse_args()
    if args.seeded:
        seeded = json.loads(args.seeded.read_text())
        _quietly(lambda: _run(args.scenario, args.requests, seeded))
        return 0
    with tempfile.TemporaryDirectory(prefix="chatapp-inprocess-") as folder:
        seeded = _seed(folder)
        if args.instructions:
            seeded_file = Path(folder) / "seeded.json"
            seeded_file.write_text(json.dumps(seeded))
            per = _instructions(args.scenario, args.requests or 400, seeded_file)
            print(f"{args.scenario}: {per:,.0f} instructions per request")
            return 0
        per = _quietly(lambda: _run(args.scenario, args.requests or 20_000, seeded))
    print(f"{args.scenario}: {per * 1e6:.1f} µs per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
