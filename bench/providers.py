"""The live-channels benchmark (docs/benchmark.md, "Live channels against the fakes"): WhatsApp
live against the loopback fake of Meta's Graph API (chatapp_accounts.fakes.meta).

    .venv/bin/python bench/providers.py                        # SQLite, every scenario
    .venv/bin/python bench/providers.py --database postgres    # PostgreSQL
    .venv/bin/python bench/providers.py --only whatsapp --one-number   # one number at 600/s
    .venv/bin/python bench/providers.py --quick                # a smoke run: small, short

`chatapp-accounts serve` runs as in production (one worker) in live mode, its Graph URL the fake
(a process of its own: this file with `--fake PORT`), its webhooks going to bench/receiver.py;
the load comes from this process (open loop, bench/messages.py's `paced`). Every scenario has
its own database, server and fake. Scenarios (issue 22):

1. `whatsapp`: the fake answers in 100 ms and sends its signed `sent` and `delivered` callbacks
   to /providers/meta/webhook; RATE sends/s for SECONDS over 7 live numbers (CHATAPP_WHATSAPP_RATE
   80/s each; `--one-number`: one number at 600/s): sends accepted per second, 202 -> `submitted`
   webhook p50/p99, the send-job backlog every 5 s, the `delivered` webhooks that came back;
2. `throttled`: two numbers (600/s each); 250/s from the second for 30 s alone, then again while
   the fake answers 130429 to every call from the first for 30 s (which is sent 100/s): the
   second's 202 -> `submitted` p99 in both runs;
3. `callbacks`: messages sent first (the fake's own callbacks off), then signed status callbacks,
   one status a request, at CB_RATE/s (`delivered` for each message, `read` for each, then
   `delivered` again: a provider's duplicate): the answers' latency p50/p99, and whether each
   status was applied once (`delivered` webhooks = messages; chatapp_provider_callbacks_total).

Each scenario also gives the CPU used (share of one core) by the server, the fake, the receiver,
this process (the load), and PostgreSQL's processes, over its measured window. Results go to
bench/results/providers-<database>-<date>.json (not with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import messages as msgs  # noqa: E402 - bench/messages.py: World, paced, latencies
import run as bench  # noqa: E402 - bench/run.py: databases, server, ports

APP_SECRET = "fake-app-secret"  # the fake's default
TOKEN = "EAAB-bench-whatsapp-token"
TO = "447700900123"  # no error-injection ending
CLK = os.sysconf("SC_CLK_TCK")
BUCKET = "chatapp_provider_call_duration_seconds_bucket"


# --- the fake, in a process of its own ------------------------------------------------------


def serve_fake(port: int) -> None:
    """MetaFake on `port`, plus two routes of the benchmark's: set the callback URL, and list
    the wamids it issued (id, phone_number_id, recipient)."""
    from aiohttp import web

    from chatapp_accounts.fakes.meta import MetaFake

    class BenchFake(MetaFake):
        def _routes(self, app: web.Application) -> None:
            super()._routes(app)
            app.router.add_post("/_bench/callback-url", self._callback_url)
            app.router.add_get("/_bench/sent", self._sent_ids)

        async def _callback_url(self, request: web.Request) -> web.Response:
            self.callback_url = (await request.json())["url"]
            return web.json_response({})

        async def _sent_ids(self, _: web.Request) -> web.Response:
            sent = [(k, self.sent_message(k) or {}) for k in self.sent_ids]
            return web.json_response(
                [[k, s.get("account_id"), s.get("recipient")] for k, s in sent]
            )

    async def main() -> None:
        await BenchFake().start("127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(main())


class Fake:
    def __init__(self) -> None:
        self.port = bench.free_port()
        self.proc = subprocess.Popen([sys.executable, __file__, "--fake", str(self.port)])
        bench.wait_listening(self.port, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"

    def control(self, path: str, body: Any = None) -> Any:
        return msgs.http("POST" if body is not None else "GET", self.base + path, body)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# --- the server in live mode ------------------------------------------------------------------


class Live(msgs.World):
    """bench/messages.py's World in live mode against the fake, with `numbers` live WhatsApp
    numbers linked to its application (their phone_number_ids pn-0, pn-1, ...)."""

    def __init__(self, kind: str, folder: Path, pg_url: str, fake: Fake, numbers: int,
                 rate: float) -> None:  # fmt: skip
        settings = {
            "CHATAPP_WHATSAPP_MODE": "live",
            "CHATAPP_META_GRAPH_URL": fake.base + "/v21.0",
            "CHATAPP_META_APP_SECRET": APP_SECRET,
            "CHATAPP_META_VERIFY_TOKEN": "bench-verify",
            "CHATAPP_WHATSAPP_RATE": str(rate),
        }
        super().__init__(kind, folder, pg_url, settings)
        self.fake = fake
        fake.control("/_bench/callback-url", {"url": self.base + "/providers/meta/webhook"})
        self.numbers = [f"4477009010{i:02d}" for i in range(numbers)]
        for i, number in enumerate(self.numbers):
            subprocess.run(
                [str(msgs.BIN / "chatapp-accounts"), "accounts", "provision", "whatsapp", number,
                 "--api-key", self.creds["api_key"], "--phone-number-id", f"pn-{i}",
                 "--waba-id", f"waba-{i}", "--access-token-file", "-"],
                input=TOKEN + "\n", env=self.env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            msgs.http("POST", f"{self.base}{bench.PREFIX}/whatsapp/{number}/applications",
                      {"application": self.application_id}, self.basic)  # fmt: skip
            fake.control("/_fake/numbers", {"phone_number_id": f"pn-{i}", "waba_id": f"waba-{i}",
                                            "display_phone_number": number})  # fmt: skip

    def body(self, number: str) -> dict[str, Any]:
        return {**msgs.message(TO), "from": number}


# --- CPU ------------------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    """CPU seconds of a process and its children (0 once it is gone)."""
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class Cpu:
    """Each process's share of one core between `start()` and `stop()`."""

    def __init__(self, world: Live) -> None:
        self.world = world

    def _read(self) -> dict[str, Any]:
        return {
            "server": cpu_of(self.world.server.pid),
            "fake": cpu_of(self.world.fake.proc.pid),
            "receiver": cpu_of(self.world.receiver.pid),
            "load (this process)": time.process_time(),
            "postgres": {p: cpu_of(p) for p in postgres_pids()},
            "machine_idle": int(Path("/proc/stat").read_text().split()[4]) / CLK,
            "t": time.monotonic(),
        }

    def start(self) -> None:
        self.first = self._read()

    def stop(self) -> dict[str, float]:
        last, first = self._read(), self.first
        span = last["t"] - first["t"]
        shares = {k: round((last[k] - first[k]) / span, 2) for k in first
                  if k not in ("postgres", "machine_idle", "t")}  # fmt: skip
        pg = sum(v - first["postgres"].get(p, 0.0) for p, v in last["postgres"].items())
        shares["postgres"] = round(pg / span, 2)
        idle = (last["machine_idle"] - first["machine_idle"]) / span
        shares["machine_busy_of_2"] = round((os.cpu_count() or 2) - idle, 2)
        return shares


# --- load -----------------------------------------------------------------------------------


def send_load(world: Live, plan: list[tuple[str, float]], seconds: float, sample: bool = True,
              codes: dict[int, int] | None = None) -> tuple[list[list[tuple[float, str]]], float,
                                                             list[Any]]:  # fmt: skip
    """Open loop: each (number, rate) of `plan` sent at its rate for `seconds`, at once; the
    (time of the 202, uuid) of each number's sends, the seconds it took, and (t, send jobs due,
    webhooks due) every 5 s."""
    samples: list[Any] = []

    async def go() -> list[list[tuple[float, str]]]:
        conns = max(4, 48 // len(plan))
        task = asyncio.gather(*(msgs.paced(world.base, "/v1/messages", world.body(n), world.jwt,
                                           r, seconds, conns, codes) for n, r in plan))  # fmt: skip
        started = time.monotonic()
        while sample and not task.done():
            await asyncio.wait({task}, timeout=5)
            if not task.done():
                jobs, hooks = await asyncio.to_thread(world.backlog)
                samples.append((round(time.monotonic() - started), jobs, hooks))
        return list(await task)

    began = time.monotonic()
    sent = asyncio.run(go())
    return sent, time.monotonic() - began, samples


def wait_for(world: Live, uuids: set[str], kind: str, timeout: float = 120) -> float:
    """Wait until the receiver has a `kind` webhook of each of `uuids`; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        got = {u for _, u, k in world.dump() if k == kind and u in uuids}
        if len(got) >= len(uuids):
            break
        time.sleep(1)
    return round(time.monotonic() - started, 1)


# --- scenarios ------------------------------------------------------------------------------


def whatsapp(world: Live, args: argparse.Namespace) -> dict[str, Any]:
    """1. RATE sends/s for SECONDS over every number, the fake answering in 100 ms."""
    world.fake.control("/_fake/latency", {"seconds": 0.1})
    if args.no_callbacks:
        world.fake.control("/_fake/statuses", {"enabled": False})
    per = args.rate / len(world.numbers)
    codes: dict[int, int] = {}
    cpu = Cpu(world)
    cpu.start()
    sent, took, samples = send_load(world, [(n, per) for n in world.numbers], args.seconds,
                                    codes=codes)  # fmt: skip
    shares = cpu.stop()
    everything = [s for one in sent for s in one]
    uuids = {u for _, u in everything}
    waited = wait_for(world, uuids, "submitted" if args.no_callbacks else "delivered")
    dump = world.dump()
    delivered = {u for _, u, k in dump if k == "delivered" and u in uuids}
    return {
        "numbers": len(world.numbers),
        "rate": args.rate,
        "seconds": args.seconds,
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "accepted_per_s": round(len(everything) / max(took, args.seconds), 1),
        "sending_s": round(took, 1),
        "submitted": msgs.latencies(world, everything, "submitted"),
        "delivered": len(delivered),
        "all_delivered_after_s": waited,
        "backlog_t_jobs_webhooks": samples,
        "cpu_cores": shares,
        # The provider's own share of the tail: calls slower than 250 ms / 500 ms (its
        # histogram), and the statuses that came before their send was recorded (held).
        "calls_over_250_500_ms": [
            world.metric('chatapp_provider_calls_total{outcome="ok",provider="meta"}')
            - world.metric(
                f'chatapp_provider_call_duration_seconds_bucket{{le="{le}",provider="meta"}}'
            )
            for le in ("0.25", "0.5")
        ],
        "held": world.metric('chatapp_provider_callbacks_total{outcome="held",provider="meta"}'),
    }


def throttled(world: Live, args: argparse.Namespace) -> dict[str, Any]:
    """2. The second number at 250/s, alone, then while the first is throttled by the fake."""
    world.fake.control("/_fake/latency", {"seconds": 0.1})
    seconds = args.throttle_seconds
    first, second = world.numbers
    results: dict[str, Any] = {"rate": args.other_rate, "seconds": seconds}
    cpu = Cpu(world)
    cpu.start()
    [alone], _, samples = send_load(world, [(second, args.other_rate)], seconds)
    shares = cpu.stop()
    wait_for(world, {u for _, u in alone}, "submitted", 60)
    results["alone"] = {**msgs.latencies(world, alone, "submitted"), "cpu_cores": shares,
                        "backlog_t_jobs_webhooks": samples}  # fmt: skip
    wait_for(world, {u for _, u in alone}, "delivered", 60)
    world.fake.control("/_fake/throttle", {"account_id": "pn-0", "seconds": seconds})
    cpu.start()
    (held, other), _, samples = send_load(
        world, [(first, args.throttled_rate), (second, args.other_rate)], seconds
    )
    shares = cpu.stop()
    wait_for(world, {u for _, u in other}, "submitted", 60)
    results["beside_throttled"] = {
        **msgs.latencies(world, other, "submitted"),
        "cpu_cores": shares,
        "backlog_t_jobs_webhooks": samples,
    }
    waited = wait_for(world, {u for _, u in held}, "submitted", 120)
    refused = [r for r in world.fake.control("/_fake/requests")["requests"]
               if r["account_id"] == "pn-0" and r["status"] == 429]  # fmt: skip
    results["throttled_number"] = {
        "rate": args.throttled_rate,
        "sent": len(held),
        "provider_429s": len(refused),
        "all_submitted_after_s": waited,  # counted from the end of the sending
        "submitted": msgs.latencies(world, held, "submitted"),
    }
    return results


def status_body(wamid: str, pnid: str, recipient: str, number: str, status: str) -> bytes:
    """A WhatsApp status callback as Meta sends it (compact JSON), one status."""
    entry = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
             "recipient_id": recipient}  # fmt: skip
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": number, "phone_number_id": pnid},
             "statuses": [entry]}  # fmt: skip
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-" + pnid[3:], "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def post_signed(
    base: str, bodies: list[bytes], rate: float, connections: int = 32
) -> tuple[list[float], list[float], dict[int, int]]:
    """Open loop: body i POSTed at start + i / rate, signed as Meta signs; each answer's latency
    from its write, and from the moment it was due (a late start counted), in ms; statuses."""
    parts = urlsplit(base)
    head = (f"POST /providers/meta/webhook HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n")  # fmt: skip
    requests = [
        (head + "X-Hub-Signature-256: sha256="
         + hmac.new(APP_SECRET.encode(), b, hashlib.sha256).hexdigest()
         + f"\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
        for b in bodies
    ]  # fmt: skip
    served, due_to_answer, codes = [], [], {}
    start = time.perf_counter() + 0.05
    next_index = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while next_index[0] < len(requests):
                i = next_index[0]
                next_index[0] += 1
                due = start + i / rate
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
                wrote = time.perf_counter()
                writer.write(requests[i])
                answer = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in answer.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                now = time.perf_counter()
                served.append((now - wrote) * 1000)
                due_to_answer.append((now - due) * 1000)
                status = int(answer.split(b" ", 2)[1])
                codes[status] = codes.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return served, due_to_answer, codes


def callbacks(world: Live, args: argparse.Namespace) -> dict[str, Any]:
    """3. Status callbacks at CB_RATE/s for messages sent first (the fake's callbacks off)."""
    world.fake.control("/_fake/statuses", {"enabled": False})
    messages = int(args.cb_rate * args.cb_seconds / 3)
    per = min(400.0, 70.0 * len(world.numbers)) / len(world.numbers)  # under the numbers' pace
    sent, _, _ = send_load(world, [(n, per) for n in world.numbers],
                           messages / (per * len(world.numbers)), sample=False)  # fmt: skip
    uuids = {u for one in sent for _, u in one}
    wait_for(world, uuids, "submitted")
    ids = world.fake.control("/_bench/sent")
    number = {f"pn-{i}": n for i, n in enumerate(world.numbers)}
    bodies = [status_body(w, p, r, number[p], status)
              for status in ("delivered", "read", "delivered") for w, p, r in ids]  # fmt: skip
    prefix = 'chatapp_provider_callbacks_total{outcome="%s",provider="meta"}'
    before = {o: world.metric(prefix % o) for o in ("applied", "duplicate", "held", "unknown")}
    cpu = Cpu(world)
    cpu.start()
    began = time.monotonic()
    served, due, codes = asyncio.run(post_signed(world.base, bodies, args.cb_rate))
    took = time.monotonic() - began
    shares = cpu.stop()
    wait_for(world, uuids, "read", 60)
    time.sleep(2)  # a duplicate's webhook, had there been one, would be here by now
    dump = [r for r in world.dump() if r[1] in uuids]
    after = {o: world.metric(prefix % o) for o in before}
    return {
        "messages": len(uuids),
        "wamids": len(ids),
        "callbacks": len(bodies),
        "rate": args.cb_rate,
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "posting_s": round(took, 1),
        "answered_per_s": round(len(served) / took, 1),
        "latency_ms": {
            "p50": round(msgs.percentile(served, 0.5), 2),
            "p99": round(msgs.percentile(served, 0.99), 2),
        },
        "due_to_answer_ms": {
            "p50": round(msgs.percentile(due, 0.5), 2),
            "p99": round(msgs.percentile(due, 0.99), 2),
        },
        "delivered_webhooks": sum(1 for r in dump if r[2] == "delivered"),
        "delivered_distinct": len({r[1] for r in dump if r[2] == "delivered"}),
        "read_webhooks": sum(1 for r in dump if r[2] == "read"),
        # nan: a counter never counted
        "metric_delta": {
            o: (after[o] if after[o] == after[o] else 0)
            - (before[o] if before[o] == before[o] else 0)
            for o in before
        },
        "cpu_cores": shares,
    }


SCENARIOS = {  # name: (function, numbers, CHATAPP_WHATSAPP_RATE)
    "whatsapp": (whatsapp, 7, 80.0),
    "throttled": (throttled, 2, 600.0),
    "callbacks": (callbacks, 7, 80.0),
}


def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"database": kind, "when": time.strftime("%Y-%m-%d %H:%M"),
                               "machine": f"{os.cpu_count()} cores"}  # fmt: skip
    for name, (scenario, numbers, rate) in SCENARIOS.items():
        if args.only not in (None, name):
            continue
        if name == "whatsapp" and args.one_number:
            numbers, rate = 1, 600.0
        folder = Path(tempfile.mkdtemp(prefix="bench-providers-"))
        fake = Fake()
        world = Live(kind, folder, args.pg_url, fake, numbers, rate)
        try:
            results[name] = {"whatsapp_rate": rate, **scenario(world, args)}
        finally:
            world.close()
            fake.close()
            bench.drop_database(world.url, args.pg_url)
        print(json.dumps({name: results[name]}), flush=True)
    return results


def report(r: dict[str, Any]) -> str:
    lines = [f"### Live channels on {r['database']} ({r['when']})", "",
             "| measure | result | target |", "|---|---|---|"]  # fmt: skip
    if "whatsapp" in r:
        w = r["whatsapp"]
        s = w["submitted"]
        lines += [
            f"| {w['rate']:.0f} sends/s for {w['seconds']:.0f} s, {w['numbers']} number(s) at "
            f"{w['whatsapp_rate']:.0f}/s: accepted | {w['accepted_per_s']:.0f}/s {w['answers']} "
            "| >= 475/s |",
            f"| ... 202 -> `submitted` | p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms "
            f"({s['count']} of {s['of']}) | p99 < 300 ms |",
            f"| ... send jobs due every 5 s | {[x[1] for x in w['backlog_t_jobs_webhooks']]} "
            "| flat |",
            f"| ... `delivered` webhooks | {w['delivered']} of {s['of']} "
            f"({w['all_delivered_after_s']}"
            " s after the sending) | all |",
            f"| ... CPU (cores) | {w['cpu_cores']} | |",
        ]
    if "throttled" in r:
        t = r["throttled"]
        a, b, h = t["alone"], t["beside_throttled"], t["throttled_number"]
        lines += [
            f"| {t['rate']:.0f}/s from one number, 202 -> `submitted`, alone | p50 "
            f"{a['p50_ms']:.0f} ms, p99 {a['p99_ms']:.0f} ms ({a['count']} of {a['of']}) | |",
            f"| ... beside a number throttled {t['seconds']:.0f} s | p50 {b['p50_ms']:.0f} ms, "
            f"p99 {b['p99_ms']:.0f} ms ({b['count']} of {b['of']}) | about the same |",
            f"| ... the throttled one ({h['rate']:.0f}/s) | {h['provider_429s']} 130429 answers; "
            f"{h['submitted']['count']} of {h['sent']} submitted, the last "
            f"{h['all_submitted_after_s']} s after the sending | |",
        ]
    if "callbacks" in r:
        c = r["callbacks"]
        lines += [
            f"| {c['callbacks']} signed status callbacks at {c['rate']:.0f}/s | answered "
            f"{c['answered_per_s']:.0f}/s {c['answers']}, p50 {c['latency_ms']['p50']} ms, p99 "
            f"{c['latency_ms']['p99']} ms (from when due: p99 {c['due_to_answer_ms']['p99']} ms) "
            "| p99 < 50 ms (SQLite) |",
            f"| ... applied once | {c['delivered_webhooks']} `delivered` webhooks for "
            f"{c['messages']} messages, {c['read_webhooks']} `read`; metric {c['metric_delta']} "
            "| = messages |",
            f"| ... CPU (cores) | {c['cpu_cores']} | |",
        ]
    return "\n".join(lines)


def main() -> int:
    if sys.argv[1:2] == ["--fake"]:
        serve_fake(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get(
        "CHATAPP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))  # fmt: skip
    parser.add_argument("--only", choices=tuple(SCENARIOS))
    parser.add_argument("--one-number", action="store_true",
                        help="whatsapp: one number, CHATAPP_WHATSAPP_RATE=600")  # fmt: skip
    parser.add_argument(
        "--no-callbacks",
        action="store_true",
        help="whatsapp: the fake sends no status callbacks (their share)",
    )
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--throttle-seconds", type=float, default=30.0)
    parser.add_argument("--other-rate", type=float, default=250.0)
    parser.add_argument("--throttled-rate", type=float, default=100.0)
    parser.add_argument("--cb-rate", type=float, default=1000.0)
    parser.add_argument("--cb-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="small and short (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.throttle_seconds = 100.0, 5.0, 5.0
        args.other_rate, args.throttled_rate, args.cb_rate, args.cb_seconds = 50, 20, 200, 5
    results = run(args.database, args)
    if not args.quick:
        tag = ("-" + args.only if args.only else "") + ("-one-number" if args.one_number else "")
        stem = f"providers-{args.database}-{time.strftime('%Y-%m-%d')}{tag}"
        out = HERE / "results" / f"{stem}.json"
        n = 1
        while out.exists():
            n += 1
            out = HERE / "results" / f"{stem}-run{n}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
