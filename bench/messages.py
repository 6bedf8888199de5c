"""The messages benchmark (docs/benchmark.md, "Messages"): sends and their webhooks, one worker.

    .venv/bin/python bench/messages.py                       # SQLite
    .venv/bin/python bench/messages.py --database postgres   # PostgreSQL
    .venv/bin/python bench/messages.py --quick               # a smoke run: small, short
    .venv/bin/python bench/messages.py --only sends --server-env CHATAPP_DISPATCHER=false
    .venv/bin/python bench/messages.py --only drain          # the dispatcher alone

`chatapp-accounts serve` runs as in production (one worker, access log on) with its webhooks
going to bench/receiver.py, another process on the same server stack. Scenarios:

1. sends accepted per second (POST /v1/messages, JWT, 32 connections, closed loop), against
   the bare-ASGI ceiling (bench/ceiling.py) measured before and after with the same load;
2. RATE sends/s sustained for SUSTAIN seconds (open loop): the `delivered` webhooks' rate at
   the receiver, and the pending webhooks (the server's own gauge) every 5 s;
3. at half that rate: time from a send's 202 to its `delivered` webhook, and from
   POST /sandbox/v1/inbound's 202 to the inbound webhook, p50 and p99;
4. 100,000 pending webhooks whose receiver is down (the server retrying them): its peak RSS;
5. sends at half the rate for DOWN seconds (60) with the receiver down, then the receiver back:
   when every webhook of those sends has arrived, and how many arrived twice.

`--only SCENARIO` runs one of them (sends, sustained, receiver_down) or `drain`: DRAIN pending
webhooks bulk-inserted (the server stopped), then the server started with no request to serve:
the rate at which the receiver gets them. `--server-env NAME=VALUE` sets the server's settings.
Neither writes bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import jwt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402 - bench/run.py: databases, server, ceiling, load

BIN = Path(sys.executable).parent
CHANNEL_FROM = "447700900000"
STATS_WAIT = 6  # the server's pending gauge is refreshed every 5 s


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urlopen(request, timeout=30) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else None


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "chatapp-accounts"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


class World:
    """A server on a fresh database, a tenant, an application whose webhooks go to the
    receiver, and a linked WhatsApp account."""

    def __init__(
        self,
        kind: str,
        folder: Path,
        pg_url: str,
        settings: dict[str, str] | None = None,
        delay_ms: float = 0.0,
    ) -> None:
        self.settings = settings or {}
        self.url = bench.fresh_database(kind, folder, pg_url)
        self.served_url = self.url
        self.proxy: subprocess.Popen[bytes] | None = None
        if delay_ms:  # PostgreSQL "on another host": the server reaches it through the proxy
            target = urlsplit(self.url)
            proxy_port = bench.free_port()
            self.proxy = subprocess.Popen(
                [sys.executable, str(HERE / "delay_proxy.py"), str(proxy_port),
                 target.hostname or "127.0.0.1", str(target.port or 5432), str(delay_ms)],
            )  # fmt: skip
            bench.wait_listening(proxy_port, self.proxy)
            self.served_url = target._replace(
                netloc=target.netloc.replace(f":{target.port or 5432}", f":{proxy_port}")
            ).geturl()
        self.keys = bench.new_key()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_")}
        self.env.update(CHATAPP_DATABASE_URL=self.url, CHATAPP_ENCRYPTION_KEYS=self.keys)
        self.folder = folder
        cli(self.env, "db", "upgrade")
        self.creds = json.loads(cli(self.env, "tenants", "create", "--json"))
        self.receiver_port = bench.free_port()
        self.start_receiver()
        self.start()
        hooks = f"http://127.0.0.1:{self.receiver_port}"
        pair = f"{self.creds['api_key']}:{self.creds['api_secret']}".encode()
        self.basic = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        webhooks = {
            "inbound_url": {"address": hooks + "/inbound", "http_method": "POST"},
            "status_url": {"address": hooks + "/status", "http_method": "POST"},
        }
        app = http(
            "POST",
            self.base + "/v2/applications",
            {"name": "bench", "capabilities": {"messages": {"webhooks": webhooks}}},
            self.basic,
        )
        self.application_id = app["id"]
        cli(
            self.env,
            "accounts",
            "provision",
            "whatsapp",
            CHANNEL_FROM,
            "--api-key",
            self.creds["api_key"],
        )
        http(
            "POST",
            f"{self.base}{bench.PREFIX}/whatsapp/{CHANNEL_FROM}/applications",
            {"application": self.application_id},
            self.basic,
        )
        now = int(time.time())
        token = jwt.encode(
            {
                "application_id": self.application_id,
                "iat": now,
                "exp": now + 7200,
                "jti": str(uuid.uuid4()),
            },
            app["keys"]["private_key"],
            algorithm="RS256",
        )
        self.jwt = {"Authorization": f"Bearer {token}"}
        self.auth = self.jwt  # the open-loop scenarios' (--auth)

    def start_receiver(self) -> None:
        """bench/receiver.py on the receiver's port (a new one remembers nothing)."""
        self.receiver = subprocess.Popen(
            [sys.executable, str(HERE / "receiver.py"), str(self.receiver_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bench.wait_listening(self.receiver_port, self.receiver)

    def stop_receiver(self) -> None:
        self.receiver.terminate()
        self.receiver.wait(10)

    def start(self) -> None:
        self.server, self.port = bench.start_server(
            self.served_url, self.keys, self.folder / "server.log", self.settings
        )
        self.base = f"http://127.0.0.1:{self.port}"
        bench.wait_listening(self.port, self.server)

    def stop(self) -> float:
        """SIGTERM; the seconds the server took to stop (killed after 60: inf)."""
        started = time.monotonic()
        self.server.terminate()
        try:
            self.server.wait(60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(10)
            return float("inf")
        return time.monotonic() - started

    def received(self) -> dict[str, Any]:
        return http("GET", f"http://127.0.0.1:{self.receiver_port}/stats")  # type: ignore[no-any-return]

    def dump(self) -> list[list[Any]]:
        return http("GET", f"http://127.0.0.1:{self.receiver_port}/dump")  # type: ignore[no-any-return]

    def metric(self, prefix: str) -> float:
        """The value of the server's first metric line that starts with `prefix`."""
        with urlopen(self.base + "/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(prefix):
                    return float(line.split()[-1])
        return float("nan")

    def pending(self) -> float:
        return self.metric("chatapp_webhooks_pending ")

    def backlog(self) -> tuple[float, float]:
        """(send jobs, webhooks) due now, every process's (read every 0.5 s)."""
        return (self.metric('chatapp_backlog{kind="send_job"}'),
                self.metric('chatapp_backlog{kind="webhook"}'))  # fmt: skip

    def statements(self) -> float:
        return self.metric("chatapp_db_statements ")

    def drain(self, timeout: float = 300) -> float:
        """Wait until the server has no pending webhook (its gauge, refreshed every 5 s, says
        0); the seconds it took, counted from the call."""
        start = time.monotonic()
        time.sleep(STATS_WAIT)
        while self.pending() > 0 and time.monotonic() - start < timeout:
            time.sleep(1)
        return time.monotonic() - start

    def close(self) -> float:
        stopped = self.stop()
        self.receiver.terminate()
        self.receiver.wait(10)
        if self.proxy is not None:
            self.proxy.terminate()
            self.proxy.wait(10)
        return stopped


def message(to: str = "447700900123") -> dict[str, Any]:
    return {
        "channel": "whatsapp",
        "message_type": "text",
        "to": to,
        "from": CHANNEL_FROM,
        "text": "hello from the benchmark",
    }


async def paced(
    base: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int = 32,
    codes: dict[int, int] | None = None,
) -> list[tuple[float, str]]:
    """Open loop: request i is sent at start + i / rate, on whichever connection is free; the
    (time of the 202, message_uuid) of each answer; `codes` counts the answers' statuses."""
    parts = urlsplit(base)
    raw = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}Content-Type: "
        f"application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    ).encode() + raw
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    next_index = [0]
    done: list[tuple[float, str]] = []
    late = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while next_index[0] < total:
                i = next_index[0]
                next_index[0] += 1
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.05:
                    late[0] += 1
                writer.write(request)
                answer_head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in answer_head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                payload = await reader.readexactly(length) if length else b""
                status = int(answer_head.split(b" ", 2)[1])
                if codes is not None:
                    codes[status] = codes.get(status, 0) + 1
                if status == 202:
                    done.append((time.time(), json.loads(payload)["message_uuid"]))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def latencies(world: World, sent: list[tuple[float, str]], kind: str) -> dict[str, float]:
    arrivals = {uuid_: at for at, uuid_, k in world.dump() if k == kind}
    gaps = [(arrivals[u] - t) * 1000 for t, u in sent if u in arrivals]
    return {
        "count": len(gaps),
        "of": len(sent),
        "p50_ms": percentile(gaps, 0.5),
        "p99_ms": percentile(gaps, 0.99),
    }


def seed_pending(world: World, count: int, url: str | None = None) -> None:
    """`count` pending webhooks (two per message) to `url` (default: a port nobody listens
    on), in bulk."""
    from chatapp_accounts.storage.engine import make_engine

    engine = make_engine(world.url)
    raw = engine.raw_connection()
    conn: Any = raw.dbapi_connection
    pg = engine.dialect.name == "postgresql"
    ph = "%s" if pg else "?"
    cur = conn.cursor()
    cur.execute(f"SELECT id FROM tenants WHERE api_key = {ph}", (world.creds["api_key"],))
    tenant = cur.fetchone()[0]
    dead = url or f"http://127.0.0.1:{bench.free_port()}/status"
    now = time.time()
    body = json.dumps({"message_uuid": "x", "status": "submitted"}).encode()
    per_batch = min(5000, count // 2)
    for batch in range(count // 2 // per_batch):
        for _ in range(per_batch):
            cur.execute(
                "INSERT INTO messages (uuid, tenant_id, direction, channel, message_type, to_id, "
                "from_id, status, application_id, content, created_at) VALUES "
                f"({ph}, {ph}, 'outbound', 'whatsapp', 'text', '447700900123', {ph}, 'delivered', "
                f"{ph}, '{{}}', {ph}) RETURNING pk",
                (str(uuid.uuid4()), tenant, CHANNEL_FROM, world.application_id, now),
            )
            pk = cur.fetchone()[0]
            for _ in range(2):
                cur.execute(
                    "INSERT INTO webhooks (tenant_id, message_pk, order_key, application_id, kind, "
                    "url, destination, body, state, attempts, due_at, created_at) VALUES "
                    f"({ph}, {ph}, {ph}, {ph}, 'status', {ph}, {ph}, {ph}, 'pending', 0, "
                    f"{ph}, {ph})",
                    (
                        tenant,
                        pk,
                        pk,
                        world.application_id,
                        dead,
                        dead.rsplit("/", 1)[0],
                        body,
                        now + batch,
                        now,
                    ),
                )
        conn.commit()
    raw.close()
    engine.dispose()


def sends(world: World, ceiling: bench.Ceiling, args: argparse.Namespace) -> dict[str, Any]:
    """1. Sends accepted, closed loop, against the ceiling measured before and after."""
    send = {"kind": "send", "body": message(), "headers": world.jwt}
    bench.drive(world.base + "/v1/messages", 2, send, ceiling.use_wrk)  # warm up
    before = ceiling.measure()
    accepted = bench.drive(world.base + "/v1/messages", args.seconds, send, ceiling.use_wrk)
    after = ceiling.measure()
    ceiling_rps = (before["rps"] + after["rps"]) / 2
    return {**accepted, "ceiling_rps": ceiling_rps, "ratio": accepted["rps"] / ceiling_rps}


def sustained(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """2. RATE sends/s for SUSTAIN seconds, open loop."""
    before_total = world.received()["by_kind"].get("delivered", 0)
    samples: list[tuple[float, float, float, int]] = []
    statements_before = world.statements()

    async def sustain() -> list[tuple[float, str]]:
        task = asyncio.create_task(
            paced(world.base, "/v1/messages", message(), world.auth, args.rate, args.sustain)
        )
        started = time.monotonic()
        while not task.done():
            await asyncio.wait({task}, timeout=5)  # sending ends when the last answer comes
            if task.done():
                break
            stats = await asyncio.to_thread(world.received)
            jobs, hooks = await asyncio.to_thread(world.backlog)
            samples.append(
                (
                    round(time.monotonic() - started),
                    jobs,
                    hooks,
                    stats["by_kind"].get("delivered", 0) - before_total,
                )
            )
        return await task

    began = time.monotonic()
    sent = asyncio.run(sustain())
    end = time.time()
    sending_s = time.monotonic() - began  # longer than asked when the server fell behind
    dump = world.dump()
    delivered_in_window = [r for r in dump if r[2] == "delivered" and r[0] <= end]
    sent_uuids = {u for _, u in sent}
    ontime = sum(1 for r in delivered_in_window if r[1] in sent_uuids)
    sent_at = {u: t for t, u in sent}
    wait = time.monotonic()
    while (
        sum(1 for r in world.dump() if r[2] == "delivered" and r[1] in sent_uuids) < len(sent)
        and time.monotonic() - wait < 120
    ):
        time.sleep(1)
    time.sleep(1)  # the last webhooks' outcomes recorded
    statements = world.statements() - statements_before
    arrivals = [r for r in world.dump() if r[2] == "delivered" and r[1] in sent_at]
    late = [r[0] - sent_at[r[1]] for r in arrivals]
    return {
        "auth": args.auth,
        "sent": len(sent),
        "statements_per_message": statements / max(1, len(sent)),
        "delivered_within_2s": sum(1 for x in late if x <= 2.0),
        "delivered_p99_s": round(percentile(late, 0.99), 3),
        "send_rate": len(sent) / sending_s,
        "sending_s": round(sending_s, 1),
        "delivered_within_window": ontime,
        "delivered_rate": ontime / args.sustain,
        "all_delivered_after_s": round(time.monotonic() - wait, 1),
        "samples_t_jobs_webhooks_delivered": samples,
    }


def both_webhooks(world: World, sent: list[tuple[float, str]]) -> dict[str, Any]:
    """Wait (300 s at most) until the `submitted` and `delivered` webhooks of every message in
    `sent` have reached the receiver: how many were expected, arrived (each once), arrived
    twice, and the seconds it took from the call."""
    uuids = {u for _, u in sent}
    started = time.monotonic()
    arrived: list[list[Any]] = []
    while time.monotonic() - started < 300:
        arrived = [r for r in world.dump() if r[1] in uuids]
        if len({(r[1], r[2]) for r in arrived}) >= 2 * len(uuids):
            break
        time.sleep(1)
    distinct = {(r[1], r[2]) for r in arrived}
    return {
        "webhooks_expected": 2 * len(uuids),
        "webhooks_arrived": len(distinct),
        "twice": len(arrived) - len(distinct),
        "seconds": round(time.monotonic() - started, 1),
    }


def overload(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """6. Beyond capacity: OVERLOAD sends/s (twice what one process sustains) for OVERLOAD_S
    seconds: how many are accepted and refused (429), then whether every accepted message's
    `submitted` and `delivered` webhooks arrive, each once."""
    codes: dict[int, int] = {}
    sent = asyncio.run(
        paced(world.base, "/v1/messages", message(), world.auth, args.overload,
              args.overload_seconds, connections=64, codes=codes)
    )  # fmt: skip
    arrived = both_webhooks(world, sent)
    waited = arrived.pop("seconds")
    return {
        "rate": args.overload,
        "seconds": args.overload_seconds,
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "accepted_rate": len(sent) / args.overload_seconds,
        **arrived,
        "all_arrived_after_s": waited,
    }


def latency(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """3. At half the rate: a send's 202 to its `delivered` webhook, an inbound's to its own."""
    half = args.rate / 2
    sent = asyncio.run(
        paced(world.base, "/v1/messages", message(), world.auth, half, args.latency_seconds)
    )
    time.sleep(2)
    results = {"send_to_delivered": {"rate": half, **latencies(world, sent, "delivered")}}
    inbound = {
        "channel": "whatsapp",
        "to": CHANNEL_FROM,
        "from": "447700900555",
        "message_type": "text",
        "text": "hi",
    }
    got = asyncio.run(
        paced(world.base, "/sandbox/v1/inbound", inbound, world.auth, half, args.latency_seconds)
    )
    time.sleep(2)
    results["inbound_to_webhook"] = {"rate": half, **latencies(world, got, "inbound")}
    return results


def receiver_down(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """5. Sends at half the rate for DOWN seconds while the receiver is down, then the receiver
    back: when every send's `submitted` and `delivered` webhooks have reached it, and how many
    arrived twice."""
    world.stop_receiver()
    sent = asyncio.run(
        paced(world.base, "/v1/messages", message(), world.auth, args.rate / 2, args.down)
    )
    world.start_receiver()
    arrived = both_webhooks(world, sent)  # counted from the receiver's return
    waited = arrived.pop("seconds")
    return {
        "rate": args.rate / 2,
        "down_s": args.down,
        "sent": len(sent),
        **arrived,
        "all_arrived_after_back_s": waited,
    }


def pending(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """4. PENDING webhooks to a port nobody listens on, the server retrying: its peak RSS."""
    stopped = world.stop()
    seed_pending(world, args.pending)
    world.start()
    time.sleep(args.pending_seconds)
    return {
        "stop_after_load_s": stopped,
        "webhooks": args.pending,
        "seconds": args.pending_seconds,
        "pending_gauge": world.pending(),
        "peak_rss_mb": bench.peak_rss_mb(world.server.pid),
    }


def drain(world: World, args: argparse.Namespace) -> dict[str, Any]:
    """DRAIN pending webhooks to the receiver, the server serving no request: their rate."""
    world.stop()
    seed_pending(world, args.drain, f"http://127.0.0.1:{world.receiver_port}/status")
    before = world.received()["total"]
    world.start()
    began = time.monotonic()
    got = 0
    while got < args.drain and time.monotonic() - began < 300:
        time.sleep(0.5)
        got = world.received()["total"] - before
    seconds = time.monotonic() - began
    return {"webhooks": got, "seconds": round(seconds, 1), "rate": got / seconds}


def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-messages-"))
    results: dict[str, Any] = {"database": kind, "rate": args.rate, "sustain_s": args.sustain}
    ceiling = bench.Ceiling(args.seconds, bench.shutil.which("wrk") is not None)
    settings = dict(item.split("=", 1) for item in args.server_env)
    world = World(kind, folder, args.pg_url, settings, args.delay_ms)
    if args.auth == "basic":
        world.auth = world.basic
    results["server_env"] = settings
    results["delay_ms"] = args.delay_ms
    results["auth"] = args.auth
    results["tool"] = "wrk" if ceiling.use_wrk else "loadgen"
    try:
        if args.only == "drain":
            results["drain"] = drain(world, args)
            return results
        if args.only in (None, "sends"):
            results["sends_jwt"] = sends(world, ceiling, args)
            # Everything sent so far is delivered before the next scenario starts.
            results["sends_jwt"]["drain_after_s"] = world.drain()
            results["ceiling"] = ceiling.summary()
        if args.only in (None, "sustained"):
            results["sustained"] = sustained(world, args)
        if args.only in (None, "latency"):
            results.update(latency(world, args))
        if args.only in (None, "overload"):
            results["overload"] = overload(world, args)
        if args.only in (None, "receiver_down"):
            results["receiver_down"] = receiver_down(world, args)
        if args.only is None:
            results["pending"] = pending(world, args)
            results["stop_after_load_s"] = results["pending"].pop("stop_after_load_s")
    finally:
        results["stop_with_pending_s"] = world.close()
        ceiling.close()
        bench.drop_database(world.url, args.pg_url)
    return results


def _down_row(d: dict[str, Any]) -> str:
    return (
        f"| receiver down {d['down_s']} s under {d['rate']:.0f} sends/s | "
        f"{d['webhooks_arrived']} of {d['webhooks_expected']} webhooks arrived "
        f"{d['all_arrived_after_back_s']} s after it was back, {d['twice']} twice | "
        "every one arrives |"
    )


def report(r: dict[str, Any]) -> str:
    """The table of the scenarios that ran (all of them, or the one of --only)."""
    settings = f", server settings {r['server_env']}" if r["server_env"] else ""
    if r.get("delay_ms"):
        settings += f", PostgreSQL {r['delay_ms']} ms away each way"
    settings += f", {r['auth']} auth"
    lines = [
        f"### Messages on {r['database']} ({r['tool']}, one worker{settings})",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    if "sends_jwt" in r:
        s = r["sends_jwt"]
        lines.append(
            f"| sends accepted, JWT | {s['rps']:.0f}/s = {s['ratio']:.1%} of the ceiling "
            f"({s['ceiling_rps']:.0f}/s), p99 {s['p99_ms']:.1f} ms | >= 10% |"
        )
    if "sustained" in r:
        sus = r["sustained"]
        lines += [
            f"| sustained {r['rate']}/s for {r['sustain_s']} s | sent {sus['send_rate']:.0f}/s, "
            f"delivered webhooks {sus['delivered_rate']:.0f}/s within the window, all "
            f"delivered {sus['all_delivered_after_s']} s after it | keeps up |",
            f"| ... `delivered` within 2 s of its send | {sus['delivered_within_2s']} of "
            f"{sus['sent']} (p99 {sus['delivered_p99_s']} s) | all |",
            f"| ... statements to the database per message ({sus['auth']}) | "
            f"{sus['statements_per_message']:.2f} | |",
            "| due backlog every 5 s (t, send jobs, webhooks, delivered) | "
            f"{sus['samples_t_jobs_webhooks_delivered']} | not growing |",
        ]
    if "overload" in r:
        o = r["overload"]
        lines.append(
            f"| {o['rate']:.0f} sends/s for {o['seconds']} s | answers {o['answers']}, accepted "
            f"{o['accepted_rate']:.0f}/s; {o['webhooks_arrived']} of {o['webhooks_expected']} "
            f"webhooks arrived ({o['all_arrived_after_s']} s after), {o['twice']} twice | "
            "refused get 429, accepted all delivered once |"
        )
    if "send_to_delivered" in r:
        lat, inb = r["send_to_delivered"], r["inbound_to_webhook"]
        lines += [
            f"| 202 -> `delivered` webhook at {lat['rate']:.0f}/s | p50 {lat['p50_ms']:.1f} ms, "
            f"p99 {lat['p99_ms']:.1f} ms ({lat['count']} of {lat['of']}) | p99 < 100 ms |",
            f"| sandbox inbound -> webhook at {inb['rate']:.0f}/s | p50 {inb['p50_ms']:.1f} ms, "
            f"p99 {inb['p99_ms']:.1f} ms ({inb['count']} of {inb['of']}) | p99 < 50 ms |",
        ]
    if "receiver_down" in r:
        lines.append(_down_row(r["receiver_down"]))
    if "pending" in r:
        pend = r["pending"]
        lines += [
            f"| {pend['webhooks']:,} pending, receiver down, {pend['seconds']} s | peak RSS "
            f"{pend['peak_rss_mb']:.0f} MB (gauge: {pend['pending_gauge']:.0f} pending) "
            "| < 200 MB |",
            f"| SIGTERM to exit, after the load / with the pending | "
            f"{r['stop_after_load_s']:.1f} s / {r['stop_with_pending_s']:.1f} s | prompt |",
        ]
    if "drain" in r:
        d = r["drain"]
        lines.append(
            f"| the dispatcher alone, no request | drain: {d['webhooks']} webhooks in "
            f"{d['seconds']} s = {d['rate']:.0f}/s | |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CHATAPP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--sustain", type=float, default=60.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--pending-seconds", type=float, default=30.0)
    parser.add_argument("--drain", type=int, default=40_000)
    parser.add_argument("--quick", action="store_true", help="small and short (a smoke run)")
    parser.add_argument("--down", type=float, default=60.0)
    parser.add_argument(
        "--only", choices=("sends", "sustained", "latency", "overload", "receiver_down", "drain")
    )
    parser.add_argument("--auth", choices=("jwt", "basic"), default="jwt",
                        help="the open-loop scenarios' credentials")  # fmt: skip
    parser.add_argument("--overload", type=float, default=1000.0, help="sends/s, scenario 6")
    parser.add_argument("--overload-seconds", type=float, default=20.0)
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="PostgreSQL this far away each way (ms)"
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", type=_setting
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rate, args.sustain = 2.0, 100.0, 5.0
        args.latency_seconds, args.pending, args.pending_seconds = 3.0, 2_000, 3.0
        args.drain, args.down = 2_000, 5.0
        args.overload, args.overload_seconds = 300.0, 3.0
    results = run(args.database, args)
    out = HERE / "results" / f"messages-{args.database}.json"
    if args.only is None and not args.quick and not args.server_env and not args.delay_ms:
        out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


def _setting(item: str) -> str:
    name, sep, _ = item.partition("=")
    if not sep or not name.startswith("CHATAPP_"):
        raise argparse.ArgumentTypeError(f"not a CHATAPP_NAME=VALUE setting: {item!r}")
    return item


if __name__ == "__main__":
    sys.exit(main())
