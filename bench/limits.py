"""The tenants' limits benchmark (docs/limits.md, docs/benchmark.md "Limits"), one worker each:

    .venv/bin/python bench/limits.py                       # SQLite
    .venv/bin/python bench/limits.py --database postgres   # PostgreSQL
    .venv/bin/python bench/limits.py --quick               # a smoke run: short

1. Cost: GET by id (Basic) and sends (POST /v1/messages, JWT), 32 connections, closed loop,
   with the limits on (counted, high enough never to refuse) and off (CHATAPP_LIMITS=false),
   the same server restarted between them, ROUNDS times each in turns (on, off, off, on...):
   each round's on / off (the two back to back), and their median. Target: >= 90%.
2. Isolation: tenant B's GET by id (4 connections) alone, then while tenant A, whose own limit
   is 50 messages/s, sends 1,000/s (open loop, 16 connections), then while the same sends go to
   the bare app instead (what the flood's client and a server answering it take of the
   machine), then alone again (the noise): B's p50 and p99, and what A got (422s: admitted,
   naming a sender it has not; 429s).
3. Across servers: two servers on one database, tenant A (50 requests/s) flooding both from 16
   connections each: what the two admitted in each whole second, read from their access logs.
   The error: the seconds over the limit, and the admitted total against 50 x the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import messages as msgs  # noqa: E402 - bench/messages.py: the world of a tenant that sends
import run as bench  # noqa: E402 - bench/run.py: databases, server, ceiling, load

FLOODED_LIMIT = 50
# Nothing sent: the sends pile up, never refused for the backlog (the limits' 429s only).
QUIET = {"CHATAPP_DISPATCHER": "false", "CHATAPP_MAX_DUE_BACKLOG": "100000000"}
FLOOD_RATE = 1000.0  # tenant A's offered requests per second, 20 times its limit
_LOG = re.compile(r"^(\S+?)\.\d+Z .* status=(\d+) .* api_key=(\S+)$")


def _restart(world: msgs.World, settings: dict[str, str]) -> None:
    world.stop()
    world.settings = settings
    world.start()


def cost(world: msgs.World, ceiling: bench.Ceiling, args: argparse.Namespace) -> dict[str, Any]:
    """1. The limits on and off, in turns."""
    base = QUIET
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        "on": {"get": [], "send": []}, "off": {"get": [], "send": []}}  # fmt: skip
    for name in ("get", "send"):  # all GETs first: the sends grow the database
        for round_ in range(args.rounds):
            for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):  # (no order bias)
                _restart(world, {**base, "CHATAPP_LIMITS": "true" if mode == "on" else "false"})
                url, scenario = {
                    "get": (f"{world.base}{bench.PREFIX}/whatsapp/{msgs.CHANNEL_FROM}",
                            {"headers": world.basic}),
                    "send": (world.base + "/v1/messages",
                             {"kind": "send", "body": msgs.message(), "headers": world.jwt}),
                }[name]  # fmt: skip
                bench.drive(url, 1, scenario, ceiling.use_wrk)  # warm up
                result = bench.drive(url, args.seconds, scenario, ceiling.use_wrk)
                result["ceiling_rps"] = ceiling.measure()["rps"]
                runs[mode][name].append(result)
    out: dict[str, Any] = {"rounds": args.rounds}
    for name in ("get", "send"):
        on = statistics.median(r["rps"] for r in runs["on"][name])
        off = statistics.median(r["rps"] for r in runs["off"][name])
        # Each round's on and off ran back to back, under the same conditions: their ratio,
        # the median of the rounds' (the database grows and the machine drifts between rounds).
        paired = [a["rps"] / b["rps"] for a, b in zip(runs["on"][name], runs["off"][name],
                                                       strict=True)]  # fmt: skip
        out[name] = {
            "on_rps": on, "off_rps": off, "ratio": statistics.median(paired),
            "paired": [round(p, 3) for p in paired],
            "on_runs": [round(r["rps"]) for r in runs["on"][name]],
            "off_runs": [round(r["rps"]) for r in runs["off"][name]],
            "on_p99_ms": statistics.median(r["p99_ms"] for r in runs["on"][name]),
            "off_p99_ms": statistics.median(r["p99_ms"] for r in runs["off"][name]),
            "errors": sum(r["errors"] for m in runs.values() for r in m[name]),
            "ceiling_rps": statistics.median(r["ceiling_rps"] for m in runs.values()
                                             for r in m[name]),
        }  # fmt: skip
    return out


def _flooder(world: msgs.World) -> tuple[str, dict[str, str]]:
    """A second tenant, its own limits FLOODED_LIMIT requests/s and messages/s: (api_key,
    Basic header)."""
    creds = json.loads(msgs.cli(world.env, "tenants", "create", "--json"))
    limit = str(FLOODED_LIMIT)
    msgs.cli(world.env, "tenants", "limits", creds["api_key"], "--requests", limit,
             "--messages", limit)  # fmt: skip
    pair = f"{creds['api_key']}:{creds['api_secret']}".encode()
    return creds["api_key"], {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def isolation(
    world: msgs.World, ceiling: bench.Ceiling, args: argparse.Namespace
) -> dict[str, Any]:
    """2. Tenant B alone, then beside tenant A sending FLOOD_RATE/s (open loop), far past its
    limit: A's sends name a sender it has not, so the few admitted are 422s, the rest 429s."""
    _restart(world, QUIET)
    _, flood_auth = _flooder(world)
    time.sleep(1.5)  # every process reads the tenants' own limits each second
    b = (f"{world.base}{bench.PREFIX}/whatsapp/{msgs.CHANNEL_FROM}",
         {"headers": world.basic, "connections": 4})  # fmt: skip
    bench.drive(b[0], 1, b[1], False)
    alone = bench.drive(b[0], args.seconds, b[1], False)
    codes: dict[int, int] = {}
    flood = msgs.message()
    flood["from"] = "447700900999"  # (not A's)

    def beside(base: str, counted: dict[int, int]) -> dict[str, Any]:
        """B's GET while FLOOD_RATE/s of A's sends go to `base`."""
        with ThreadPoolExecutor(1) as pool:
            flooded = pool.submit(lambda: asyncio.run(msgs.paced(
                base, "/v1/messages", flood, flood_auth, FLOOD_RATE, args.seconds + 1,
                connections=16, codes=counted)))  # fmt: skip
            time.sleep(0.5)
            measured = bench.drive(b[0], args.seconds, b[1], False)
            flooded.result()
        return measured

    refused = beside(world.base, codes)
    # The same sends to the bare app, another process: what the flood's client and a server
    # answering it take of the machine, nothing of B's server.
    elsewhere = beside(f"http://127.0.0.1:{ceiling.port}", {})
    again = bench.drive(b[0], args.seconds, b[1], False)  # alone again: the noise's measure
    return {
        "alone": alone,
        "beside_flood": refused,
        "beside_flood_elsewhere": elsewhere,
        "alone_again": again,
        "flood": {"rate": FLOOD_RATE, "codes": {str(k): v for k, v in sorted(codes.items())},
                  "admitted_per_s": codes.get(422, 0) / (args.seconds + 1)},
    }  # fmt: skip


def _admitted(logs: list[Path], api_key: str) -> Counter[str]:
    """The flooding tenant's 2xx answers in each whole second of the clock, every log's."""
    seconds: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            found = _LOG.match(line)
            if found and found.group(3) == api_key and found.group(2).startswith("2"):
                seconds[found.group(1)] += 1
    return seconds


def across(world: msgs.World, args: argparse.Namespace) -> dict[str, Any]:
    """3. Two servers on one database, one tenant flooding both."""
    _restart(world, QUIET)
    key, flood_auth = _flooder(world)
    second, port = bench.start_server(world.served_url, world.keys, world.folder / "server-2.log",
                                      QUIET)  # fmt: skip
    try:
        bench.wait_listening(port, second)
        time.sleep(1.5)
        scenario = {"headers": flood_auth, "connections": 16}
        urls = [world.base + "/v2/applications", f"http://127.0.0.1:{port}/v2/applications"]
        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(bench.drive, u, args.seconds, scenario, False) for u in urls]
            floods = [d.result() for d in done]
    finally:
        second.terminate()
        second.wait(20)
    per_second = _admitted([world.folder / "server.log", world.folder / "server-2.log"], key)
    whole = sorted(per_second)[1:-1]  # the first and last seconds were partly measured
    counts = [per_second[s] for s in whole]
    return {
        "limit": FLOODED_LIMIT, "seconds": len(counts), "per_second": counts,
        "over_limit_seconds": sum(c > FLOODED_LIMIT for c in counts),
        "max": max(counts, default=0),
        "error": (sum(counts) - FLOODED_LIMIT * len(counts)) / (FLOODED_LIMIT * len(counts))
        if counts else float("nan"),
        "offered_rps": sum(f["rps"] for f in floods),
    }  # fmt: skip


_ISOLATION = ("alone", "beside_flood", "beside_flood_elsewhere", "alone_again")


def report(r: dict[str, Any]) -> str:
    c, i, x = r["cost"], r["isolation"], r["across"]
    lines = [
        f"### Limits on {r['database']} (loadgen, one worker; rounds {c['rounds']})",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    for name, label in (("get", "GET by id, Basic"), ("send", "sends, JWT")):
        m = c[name]
        lines.append(
            f"| {label}: limits on / off | {m['ratio']:.1%}, the median of the rounds' "
            f"{[f'{p:.0%}' for p in m['paired']]} ({m['on_rps']:.0f}/s / {m['off_rps']:.0f}/s; "
            f"runs on {m['on_runs']}, off {m['off_runs']}; p99 "
            f"{m['on_p99_ms']:.1f} / {m['off_p99_ms']:.1f} ms; ceiling {m['ceiling_rps']:.0f}/s) "
            "| >= 90% |"
        )
    lines += [
        "| tenant B's GET by id (4 connections) alone / beside A sending past its limit / "
        "beside the same sends to the bare app (the machine's share) / alone again | p50 "
        + " / ".join(f"{i[k]['p50_ms']:.2f}" for k in _ISOLATION)
        + " ms, p99 "
        + " / ".join(f"{i[k]['p99_ms']:.2f}" for k in _ISOLATION)
        + " ms; "
        + " / ".join(f"{i[k]['rps']:.0f}" for k in _ISOLATION)
        + "/s | p99 within noise |",
        f"| ... tenant A (own limit {FLOODED_LIMIT}/s) sending {i['flood']['rate']:.0f}/s | "
        f"answers {i['flood']['codes']} (422: admitted, naming a sender it has not; 429: "
        f"refused), {i['flood']['admitted_per_s']:.1f} admitted/s | {FLOODED_LIMIT}/s |",
        f"| two servers on one database, A flooding both ({x['offered_rps']:.0f} requests/s) | "
        f"admitted per whole second {x['per_second']}: {x['over_limit_seconds']} of "
        f"{x['seconds']} over {x['limit']}, most {x['max']}; total {x['error']:+.1%} against "
        f"the limit | none over |",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 s runs, one round")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    folder = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    ceiling = bench.Ceiling(args.seconds, False)
    world = msgs.World(args.database, folder, args.pg_url)
    results: dict[str, Any] = {"database": args.database}
    try:
        results["cost"] = cost(world, ceiling, args)
        results["isolation"] = isolation(world, ceiling, args)
        results["across"] = across(world, args)
    finally:
        world.close()
        ceiling.close()
        bench.drop_database(world.url, args.pg_url)
    print(json.dumps(results, indent=1))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
