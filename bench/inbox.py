"""The web inbox with real volumes (issue 23, docs/benchmark.md): 100,000 messages in one tenant
on SQLite, over ~2,000 conversations, one of them 5,000 messages long.

    .venv/bin/python bench/inbox.py            # 100,000 messages
    .venv/bin/python bench/inbox.py --quick    # a smoke run: 5,000 messages, a few requests

The database is made as a user's is: `chatapp-accounts db upgrade`, `tenants create --json`,
accounts of every channel provisioned with the CLI and linked, through the API, to an
application. The messages are then inserted in bulk, straight into the tables (their columns
checked against storage/tables.py), as storage writes them: `account`/`peer` as
MessageRecord.conversation fills them, every outbound message with its statuses and send job,
every message with its webhooks (delivered) and an attempt each. Then `chatapp-accounts serve`
starts on it (one worker, as in production, access log on), the benchmark signs in to the inbox
(GET /inbox/login for the anti-forgery cookie and field, POST /inbox/login, the session cookie
kept) and asks, for each request type, first one request after another, then with CLIENTS
clients at once (bench/loadgen.py):

    inbox               GET /inbox: the first page after sign-in (sidebar + newest 50)
    sidebar             GET /inbox/sidebar: the accounts and their conversations
    messages            GET /inbox/messages: all messages, newest 50
    conversation_first  GET /inbox/messages?q=channel:C account:A customer:P&page_number=1
    conversation_last   ... the same, its last page (100 of the 5,000-message conversation)
    search              GET /inbox/messages?q=hello: a word, found in a fraction of them
    latest              GET /inbox/messages/latest: the newest message, its detail

Server time is each request's `duration_ms` in the access log the server writes to stderr
(each request is tagged with an X-Request-Id of its type, which the log repeats); client time
and rates are the benchmark's. The ceiling (bench/ceiling.py, a bare ASGI app on the same
server stack) is measured with the same clients before the first concurrent run and after each;
each rate is compared with the mean of the two beside it, as in bench/run.py. Results go to
bench/results/inbox-sqlite[-quick].json and .md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402 - bench/run.py: databases, server, ceiling, load

from chatapp_accounts.storage import tables  # noqa: E402

BIN = Path(sys.executable).parent
PAGE = 50  # the inbox's page (api/inbox PAGE_SIZE)
CLIENTS = 4
TARGET_MS = 200.0
# The tenant's accounts (channel, provider, external id): two WhatsApp numbers, a page, ...
ACCOUNTS = [
    ("whatsapp", "whatsapp", "447700900000"),
    ("whatsapp", "whatsapp", "447700900001"),
    ("messenger", "messenger", "107000000000001"),
    ("viber_service", "viber_service_msg", "447700900002"),
    ("rcs", "rcs", "chatapp-agent"),
]
TEXTS = [
    "hello, is my order on its way?",
    "Thanks, that is all",
    "Your order {n} has shipped",
    "Can I change the delivery address?",
    "hello again: any news?",
    "Your verification code is {n}",
    "See you tomorrow at ten",
]
TYPES = (
    "inbox",
    "sidebar",
    "messages",
    "conversation_first",
    "conversation_last",
    "search",
    "latest",
)
# A fixed attempt's headers, as long as the real ones (a signed JWT in Authorization).
ATTEMPT_HEADERS = json.dumps(
    {
        "Content-Type": "application/json",
        "Authorization": "Bearer " + "x" * 620,
        "User-Agent": "chatapp-accounts-webhooks/1",
    },
    separators=(",", ":"),
)


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "chatapp-accounts"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def api(port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, json.dumps(body), {"Content-Type": "application/json",
                                                       **headers})  # fmt: skip
        answer = conn.getresponse()
        raw = answer.read()
        if answer.status >= 300:
            raise SystemExit(f"{method} {path}: {answer.status} {raw[:500]!r}")
        return json.loads(raw) if raw else None
    finally:
        conn.close()


# --- the database ------------------------------------------------------------------------


def conversations(count: int) -> list[tuple[str, str, str]]:
    """`count` conversations (channel, account, customer) over ACCOUNTS."""
    found = []
    for i in range(count):
        channel, _, account = ACCOUNTS[i % len(ACCOUNTS)]
        if channel == "messenger":
            peer = f"{7000000000000000 + i}"
        else:
            peer = f"4477{10000000 + i}"
        found.append((channel, account, peer))
    return found


def seed_messages(path: str, tenant: int, application_id: str, total: int, big: int,
                  count: int) -> dict[str, Any]:  # fmt: skip
    """`total` messages in bulk over `count` conversations, the first `big` long; their
    statuses, send jobs, webhooks and attempts. The columns are storage/tables.py's."""
    import sqlite3

    rng = random.Random(23)
    threads = conversations(count)
    order = [0] * big + [1 + rng.randrange(count - 1) for _ in range(total - big)]
    rng.shuffle(order)
    now = time.time()
    step = min(1.5, 5 * 86400 / total)  # all within the retention (7 days)
    start = now - total * step
    rows: dict[str, list[tuple[Any, ...]]] = {
        "messages": [], "message_statuses": [], "send_jobs": [], "webhooks": [],
        "webhook_attempts": [],
    }  # fmt: skip
    columns = {
        "messages": ("pk", "uuid", "tenant_id", "root_pk", "direction", "channel",
                     "message_type", "to_id", "from_id", "status", "application_id", "client_ref",
                     "webhook_url", "workflow", "content", "created_at", "account", "peer"),
        "message_statuses": ("message_pk", "status", "at", "error", "tenant_id"),
        "send_jobs": ("tenant_id", "message_pk", "state", "attempts", "due_at",
                      "first_attempt_at", "claimed_until", "outcome_unknown", "status_url",
                      "created_at"),
        "webhooks": ("pk", "tenant_id", "message_pk", "order_key", "application_id", "kind",
                     "url", "destination", "body", "state", "attempts", "due_at",
                     "first_attempt_at", "claimed_until", "created_at"),
        "webhook_attempts": ("webhook_pk", "at", "url", "status_code", "error",
                             "next_attempt_at", "tenant_id", "request_headers", "answer",
                             "latency"),
    }  # fmt: skip
    for table, names in columns.items():
        known = set(tables.metadata.tables[table].columns.keys())
        assert set(names) <= known, (table, set(names) - known)
    db = sqlite3.connect(path)
    first_pk = (db.execute("SELECT COALESCE(MAX(pk), 0) FROM messages").fetchone()[0]) + 1
    hook_pk = (db.execute("SELECT COALESCE(MAX(pk), 0) FROM webhooks").fetchone()[0]) + 1
    dead = "http://127.0.0.1:9"
    outbound = 0
    for i, c in enumerate(order):
        pk = first_pk + i
        channel, account, peer = threads[c]
        at = start + i * step
        message_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        text = TEXTS[rng.randrange(len(TEXTS))].format(n=100000 + i)
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
        )
        if rng.random() < 0.5:  # outbound: from the account to the customer
            outbound += 1
            to, sender, direction = peer, account, "outbound"
            content = {"channel": channel, "message_type": "text", "to": to, "from": sender,
                       "text": text}  # fmt: skip
            changes = ["submitted", "delivered"] + (["read"] if rng.random() < 0.3 else [])
            status: str | None = changes[-1]
            rows["send_jobs"].append((tenant, pk, "done", 1, at, at + 0.005, at + 30, False,
                                      f"{dead}/status", at))  # fmt: skip
            for n, change in enumerate(changes):
                rows["message_statuses"].append((pk, change, at + 0.01 * (n + 1), None, tenant))
            hooks = [
                ("status", f"{dead}/status", {"message_uuid": message_uuid, "to": to,
                 "from": sender, "timestamp": stamp, "status": change, "channel": channel})
                for change in changes
            ]  # fmt: skip
        else:  # inbound: from the customer to the account
            to, sender, direction, status = account, peer, "inbound", None
            content = {"text": text}
            hooks = [
                ("inbound", f"{dead}/inbound", {"channel": channel, "message_uuid": message_uuid,
                 "to": to, "from": sender, "timestamp": stamp, "message_type": "text",
                 "text": text, "context_status": "none"})
            ]  # fmt: skip
        rows["messages"].append(
            (pk, message_uuid, tenant, None, direction, channel, "text", to, sender, status,
             application_id, None, None, None, json.dumps(content, separators=(",", ":")), at,
             account, peer)
        )  # fmt: skip
        for kind, url, body in hooks:
            sent = at + 0.02
            rows["webhooks"].append(
                (hook_pk, tenant, pk, pk, application_id, kind, url, dead,
                 json.dumps(body, separators=(",", ":")).encode(), "delivered", 1, at, sent,
                 sent + 30, at)
            )  # fmt: skip
            rows["webhook_attempts"].append(
                (hook_pk, sent, url, 200, None, None, tenant, ATTEMPT_HEADERS, "", 0.004)
            )
            hook_pk += 1
    db.execute("BEGIN")
    for table, names in columns.items():
        marks = ", ".join("?" * len(names))
        db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows[table])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {
        "messages": total,
        "outbound": outbound,
        "conversations": count,
        "statuses": len(rows["message_statuses"]),
        "webhooks": len(rows["webhooks"]),
        "attempts": len(rows["webhook_attempts"]),
        "big": {
            "channel": threads[0][0],
            "account": threads[0][1],
            "customer": threads[0][2],
            "messages": big,
        },
    }


# --- signing in, requests ----------------------------------------------------------------


def sign_in(port: int, api_key: str, api_secret: str) -> str:
    """GET /inbox/login (its anti-forgery cookie and field), POST /inbox/login: the session
    cookie, as a Cookie header's value."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/inbox/login")
        answer = conn.getresponse()
        html = answer.read().decode()
        jar = SimpleCookie()
        for value in answer.headers.get_all("set-cookie") or []:
            jar.load(value)
        field = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert answer.status == 200 and field, (answer.status, html[:500])
        form = urlencode({"api_key": api_key, "api_secret": api_secret,
                          "csrf_token": field.group(1)})  # fmt: skip
        cookie = "; ".join(f"{k}={m.value}" for k, m in jar.items())
        conn.request("POST", "/inbox/login", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
            "Origin": f"http://127.0.0.1:{port}"})  # fmt: skip
        answer = conn.getresponse()
        answer.read()
        session = SimpleCookie()
        for value in answer.headers.get_all("set-cookie") or []:
            session.load(value)
        assert answer.status == 303 and "chatapp_inbox" in session, answer.status
        return f"chatapp_inbox={session['chatapp_inbox'].value}"
    finally:
        conn.close()


def paths(big: dict[str, Any]) -> dict[str, str]:
    thread = f"channel:{big['channel']} account:{big['account']} customer:{big['customer']}"
    last = math.ceil(big["messages"] / PAGE)
    return {
        "inbox": "/inbox",
        "sidebar": "/inbox/sidebar",
        "messages": "/inbox/messages",
        "conversation_first": "/inbox/messages?" + urlencode({"q": thread, "page_number": 1}),
        "conversation_last": "/inbox/messages?" + urlencode({"q": thread, "page_number": last}),
        "search": "/inbox/messages?" + urlencode({"q": "hello"}),
        "latest": "/inbox/messages/latest",
    }


def sequential(port: int, cookie: str, name: str, path: str, count: int) -> dict[str, Any]:
    """`count` requests one after another on one connection: client times, the rows of the
    first answer (messages, or the sidebar's conversations) and its "page N of M"."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, statuses = [], {}
    items, pages = 0, ""
    try:
        for i in range(count):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie,
                                               "X-Request-Id": f"{name}.seq.{i}"})  # fmt: skip
            answer = conn.getresponse()
            body = answer.read()
            times.append((time.perf_counter() - started) * 1000)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            if i == 0:
                html = body.decode()
                items = html.count('class="msg ') or html.count('class="thread"')
                shown = re.search(r"page (\d+) of (\d+)", html)
                pages = f"{shown.group(1)} of {shown.group(2)}" if shown else ""
    finally:
        conn.close()
    return {"requests": count, "statuses": statuses, "items": items, "page": pages,
            "client_p50_ms": pct(times, 0.5), "client_p99_ms": pct(times, 0.99)}  # fmt: skip


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def server_times(log: Path) -> dict[str, list[float]]:
    """duration_ms of the access log's lines, by request id."""
    found: dict[str, list[float]] = {}
    pattern = re.compile(r"request_id=(\S+) method=\S+ route=\S+ status=\d+ duration_ms=([\d.]+)")
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.search(line)
        if m:
            found.setdefault(m.group(1), []).append(float(m.group(2)))
    return found


class Ceiling(bench.Ceiling):
    """bench/run.py's ceiling, driven with the benchmark's clients."""

    def measure(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{bench.PREFIX}/messenger/000000001"
        self.runs.append(drive_clients(url, self.seconds, {}))
        return self.runs[-1]


def drive_clients(url: str, seconds: float, headers: dict[str, str]) -> dict[str, Any]:
    return bench.drive(url, seconds, {"headers": headers, "connections": CLIENTS}, False)


# --- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    url = f"sqlite:///{folder}/inbox.sqlite3"
    keys = bench.new_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_")}
    env.update(CHATAPP_DATABASE_URL=url, CHATAPP_ENCRYPTION_KEYS=keys)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": " ".join(["bench/inbox.py", *sys.argv[1:]]),
        "clients": CLIENTS,
        "seconds": args.seconds,
        "sequential_requests": args.requests,
    }
    cli(env, "db", "upgrade")
    creds = json.loads(cli(env, "tenants", "create", "--json"))
    for _, provider, external_id in ACCOUNTS:
        extra = ["--access-token", "page-token"] if provider == "messenger" else []
        cli(env, "accounts", "provision", provider, external_id, "--api-key", creds["api_key"],
            "--name", f"{provider} {external_id}", *extra)  # fmt: skip
    # The application and the links through the API (a first server, stopped before the seed).
    log = folder / "server.log"
    proc, port = bench.start_server(url, keys, log)
    pair = f"{creds['api_key']}:{creds['api_secret']}".encode()
    basic = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    try:
        bench.wait_listening(port, proc)
        hooks = {
            kind: {"address": f"http://127.0.0.1:9/{kind[:-4]}", "http_method": "POST"}
            for kind in ("inbound_url", "status_url")
        }
        capabilities = {"messages": {"webhooks": hooks}}
        app = api(port, "POST", "/v2/applications", {"name": "inbox", "capabilities": capabilities},
                  basic)  # fmt: skip
        for _, provider, external_id in ACCOUNTS:
            api(port, "POST", f"{bench.PREFIX}/{provider}/{external_id}/applications",
                {"application": app["id"]}, basic)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(20)
    path = url.split(":///", 1)[1]
    import sqlite3

    with sqlite3.connect(path) as db:
        tenant = db.execute("SELECT id FROM tenants WHERE api_key = ?",
                            (creds["api_key"],)).fetchone()[0]  # fmt: skip
    t0 = time.perf_counter()
    seeded = seed_messages(path, tenant, app["id"], args.messages, args.big, args.conversations)
    seeded["seconds"] = round(time.perf_counter() - t0, 1)
    seeded["database_mb"] = round(os.path.getsize(path) / 2**20, 1)
    results["seeded"] = seeded
    print(f"seeded {args.messages:,} messages in {seeded['seconds']} s "
          f"({seeded['database_mb']} MB)", file=sys.stderr)  # fmt: skip

    ceiling = Ceiling(args.seconds, False)
    proc, port = bench.start_server(url, keys, log)
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {}
    try:
        bench.wait_listening(port, proc)
        cookie = sign_in(port, creds["api_key"], creds["api_secret"])
        targets = paths(seeded["big"])
        # The first request of all: the page a person sees first, on a cold server.
        first = sequential(port, cookie, "cold", targets["inbox"], 1)
        for name in TYPES:
            sequential(port, cookie, f"warm-{name}", targets[name], 2)
            figures[name] = {"path": targets[name],
                             "sequential": sequential(port, cookie, name, targets[name],
                                                      args.requests)}  # fmt: skip
        for name in TYPES:
            before = ceiling.runs[-1] if ceiling.runs else ceiling.measure()
            got = drive_clients(base + targets[name], args.seconds,
                                {"Cookie": cookie, "X-Request-Id": f"{name}.conc"})  # fmt: skip
            got["ceiling_rps"] = (before["rps"] + ceiling.measure()["rps"]) / 2
            figures[name]["concurrent"] = got
        results["peak_rss_mb"] = round(bench.peak_rss_mb(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(20)
        ceiling.close()
    times = server_times(log)
    results["cold_first_page_ms"] = times.get("cold.seq.0", [0.0])[0]
    results["cold_first_page_client_ms"] = first["client_p50_ms"]
    for name in TYPES:
        seq = [t for i in range(args.requests) for t in times.get(f"{name}.seq.{i}", [])]
        conc = times.get(f"{name}.conc", [])
        figures[name]["sequential"].update(
            server_p50_ms=pct(seq, 0.5), server_p99_ms=pct(seq, 0.99), logged=len(seq)
        )
        figures[name]["concurrent"].update(
            server_p50_ms=pct(conc, 0.5), server_p99_ms=pct(conc, 0.99), logged=len(conc)
        )
    results["requests"] = figures
    results["ceiling"] = ceiling.summary()
    results["ceiling_runs"] = [r["rps"] for r in ceiling.runs]
    first_p99 = figures["inbox"]["sequential"]["server_p99_ms"]
    last = figures["conversation_last"]["sequential"]
    results["targets"] = [
        {"target": f"GET /inbox p99 < {TARGET_MS:.0f} ms (server, one client)",
         "met": first_p99 < TARGET_MS, "measured": f"{first_p99:.1f} ms"},
        {"target": f"conversation's last page p99 < {TARGET_MS:.0f} ms (server, one client)",
         "met": last["server_p99_ms"] < TARGET_MS, "measured": f"{last['server_p99_ms']:.1f} ms"},
        {"target": f"conversation pages: {PAGE} messages a page",
         "met": last["items"] == min(PAGE, args.big) and
         figures["conversation_first"]["sequential"]["items"] == min(PAGE, args.big),
         "measured": f"first {figures['conversation_first']['sequential']['items']}, "
                     f"last {last['items']} (page {last['page']})"},
    ]  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    return results


def report(r: dict[str, Any]) -> str:
    s, c = r["seeded"], r["ceiling"]
    big = s["big"]
    lines = [
        f"### Inbox on SQLite: {r['machine']}, loadgen, one worker",
        "",
        f"{s['messages']:,} messages in one tenant ({s['outbound']:,} outbound), "
        f"{s['conversations']:,} conversations, the longest {big['messages']:,} "
        f"({big['channel']} {big['account']} <-> {big['customer']}); {s['statuses']:,} statuses, "
        f"{s['webhooks']:,} webhooks, {s['attempts']:,} attempts; seeded in {s['seconds']} s, "
        f"{s['database_mb']} MB. Sequential: {r['sequential_requests']} requests of each type "
        f"on one connection; concurrent: {r['clients']} clients for {r['seconds']} s. Ceiling "
        f"(bare ASGI app, same server, {r['clients']} clients): median {c['rps']:,.0f} req/s "
        f"over {c['runs']} runs. First request after start (cold): "
        f"{r['cold_first_page_ms']:.1f} ms server time.",
        "",
        "| request | rows, page | server p50 ms | server p99 ms | client p99 ms | "
        f"{r['clients']} clients: req/s | ratio to ceiling | server p50 ms | server p99 ms "
        "| non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in TYPES:
        seq, conc = r["requests"][name]["sequential"], r["requests"][name]["concurrent"]
        bad = sum(n for code, n in seq["statuses"].items() if not 200 <= int(code) < 300)
        lines.append(
            f"| {name} | {seq['items']}, {seq['page'] or '-'} | {seq['server_p50_ms']:.1f} | "
            f"{seq['server_p99_ms']:.1f} | {seq['client_p99_ms']:.1f} | {conc['rps']:,.1f} | "
            f"{conc['rps'] / conc['ceiling_rps']:.2%} | {conc['server_p50_ms']:.1f} | "
            f"{conc['server_p99_ms']:.1f} | {bad + conc['errors']} |"
        )
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {t['target']} | {'yes' if t['met'] else '**no**'} | {t['measured']} |"
              for t in r["targets"]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=5_000, help="the longest conversation")
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=200, help="sequential, of each type")
    parser.add_argument("--seconds", type=float, default=10.0, help="concurrent, of each type")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 messages")
    parser.add_argument("--out", default=str(HERE / "results"), help="where to write results")
    parser.add_argument("--tag", default="", help="a suffix for the results' file names")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.big, args.conversations = 5_000, 500, 100
        args.requests, args.seconds = 5, 1.0
    results = run(args)
    table = report(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"inbox-sqlite{'-quick' if args.quick else ''}{args.tag}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
