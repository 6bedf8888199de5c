"""The benchmark: the hot paths against the server stack's own ceiling, in one run.

    .venv/bin/python bench/run.py                       # SQLite, 10 thousand and 1 million accounts
    .venv/bin/python bench/run.py --database postgres   # the same suite on PostgreSQL
    .venv/bin/python bench/run.py --quick               # a smoke run: small, short (CI runs it)

It seeds the accounts in bulk (SQL, COPY on PostgreSQL), starts `chatapp-accounts serve` as it
runs in production (same command, same settings, one worker), and drives load from a separate
process: wrk when it is installed, else bench/loadgen.py. In the same run it serves a bare ASGI
app that answers the same bytes (bench/ceiling.py) on the same server: the ceiling. The ceiling is
measured before the first scenario and again after every scenario, and each scenario is compared
with the mean of the two ceiling runs beside it: on a shared machine whose speed drifts, a
scenario and its ceiling are measured under the same conditions. Results go to
bench/results/<database>.json and .md, every throughput with its ratio to its ceiling.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from chatapp_accounts.security import secrets
from chatapp_accounts.security.keys import generate_rsa_key_pair
from chatapp_accounts.security.tokens import TokenCipher, new_key, row_binding
from chatapp_accounts.storage.engine import make_engine, normalise_url
from chatapp_accounts.storage.migrate import upgrade

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PREFIX = "/beta/chatapp-accounts"
PROVIDERS = ["whatsapp", "messenger", "viber_service_msg", "rcs"]  # messenger: i % 4 == 1
CONNECTIONS = 32
LINK_ACCOUNTS = 10000  # a link and its unlink are this many requests apart

TARGETS = {
    "get_basic": ("GET by id, Basic", 0.35),
    "get_jwt": ("GET by id, JWT", 0.30),
    "list_first": ("list, first page", 0.20),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start listening")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- seeding -----------------------------------------------------------------------------


@dataclass
class Seed:
    api_key: str
    api_secret: str
    application_id: str
    private_key: str
    accounts: int


def seed(database_url: str, keys: str, accounts: int, other_tenants: int = 3) -> Seed:
    """The benchmark tenant gets `accounts` accounts, three others a thousand each."""
    engine = make_engine(database_url)
    upgrade(engine)
    cipher = TokenCipher.from_texts([keys])
    secret = secrets.new_api_secret()
    private_key, public_key = generate_rsa_key_pair()
    app_id = str(uuid.uuid4())
    raw = engine.raw_connection()
    conn: Any = raw.dbapi_connection
    pg = engine.dialect.name == "postgresql"
    ph = "%s" if pg else "?"
    cur = conn.cursor()
    if not pg:
        cur.execute("BEGIN")
    tenant_ids = []
    api_key = ""
    for _ in range(1 + other_tenants):
        key = uuid.uuid4().hex[:8]
        api_key = api_key or key
        cur.execute(
            "INSERT INTO tenants (api_key, secret_hash, revoked) "
            f"VALUES ({ph}, {ph}, {ph}) RETURNING id",
            (key, secrets.hash_secret(secret), False),
        )
        tenant_ids.append(cur.fetchone()[0])
    cur.execute(
        "INSERT INTO applications "
        "(id, tenant_id, name, public_key, capabilities, privacy, has_messages) "
        f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
        (
            app_id,
            tenant_ids[0],
            "bench",
            public_key,
            '{"messages":{}}',
            '{"improve_ai":true}',
            True,
        ),
    )

    def rows(tenant_id: int, count: int, tag: str) -> Any:
        for i in range(count):
            provider = PROVIDERS[i % 4]
            external_id = f"{tag}{i:09d}"
            token = None
            if provider == "messenger":
                token = cipher.encrypt(f"token-{external_id}", row_binding(provider, external_id))
            yield (tenant_id, provider, external_id, None, token, None)

    columns = "tenant_id, provider, external_id, name, access_token, application_id"
    batches = [(tenant_ids[0], accounts, "")] + [(t, 1000, f"t{t}-") for t in tenant_ids[1:]]
    for tenant_id, count, tag in batches:
        if pg:
            with cur.copy(f"COPY accounts ({columns}) FROM STDIN") as copy:
                for row in rows(tenant_id, count, tag):
                    copy.write_row(row)
        else:
            cur.executemany(
                f"INSERT INTO accounts ({columns}) VALUES (?, ?, ?, ?, ?, ?)",
                rows(tenant_id, count, tag),
            )
    # The reference tables the API writes with each row (migration 0007).
    cur.execute(
        "INSERT INTO account_routes (provider, external_id, tenant_id) "
        "SELECT provider, external_id, tenant_id FROM accounts"
    )
    cur.execute(
        "INSERT INTO application_routes (id, tenant_id) SELECT id, tenant_id FROM applications"
    )
    conn.commit() if pg else cur.execute("COMMIT")
    if pg:
        cur.execute("ANALYZE")
        conn.commit()
    raw.close()
    engine.dispose()
    return Seed(api_key, secret, app_id, private_key, accounts)


def fresh_database(kind: str, folder: Path, pg_url: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{folder}/bench-{uuid.uuid4().hex[:6]}.sqlite3"
    from sqlalchemy import create_engine, text

    name = f"chatapp_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return normalise_url(pg_url).rsplit("/", 1)[0] + "/" + name


def drop_database(url: str, pg_url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.split(":///", 1)[1] + suffix).unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


# --- load --------------------------------------------------------------------------------


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def drive(url: str, seconds: float, scenario: dict[str, Any], use_wrk: bool) -> dict[str, Any]:
    headers = scenario.get("headers", {})
    connections = scenario.get("connections", CONNECTIONS)
    if use_wrk:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        env = dict(os.environ)
        if scenario.get("kind") == "create":
            cmd += ["-s", str(HERE / "wrk" / "create.lua")]
            env["BENCH_RUN"] = uuid.uuid4().hex[:12]
        elif scenario.get("kind") == "send":
            cmd += ["-s", str(HERE / "wrk" / "send.lua")]
            env["BENCH_BODY"] = json.dumps(scenario["body"])
        elif scenario.get("kind") == "link_unlink":
            cmd += ["-s", str(HERE / "wrk" / "link_unlink.lua")]
            env.update(
                BENCH_LINK_ACCOUNTS=str(scenario["link_accounts"]),
                BENCH_LINK_FIRST=str(scenario.get("link_first", 0)),
                BENCH_APP=scenario["app"],
                BENCH_PREFIX=scenario["prefix"],
            )
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, env=env, check=True
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
        non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        return {
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "requests": total,
            "errors": int(non_2xx.group(1)) if non_2xx else 0,
            "tool": "wrk",
        }
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            url,
            str(seconds),
            str(connections),
            json.dumps(scenario),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    ok = sum(n for s, n in result["statuses"].items() if 200 <= int(s) < 300)
    return {
        "rps": result["rps"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "requests": result["requests"],
        "errors": result["requests"] - ok,
        "tool": "loadgen",
    }


class Ceiling:
    """The bare app, served for the whole run; `measure()` drives it once."""

    def __init__(self, seconds: float, use_wrk: bool) -> None:
        self.seconds, self.use_wrk = seconds, use_wrk
        self.runs: list[dict[str, Any]] = []
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "ceiling.py"), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.proc)
        drive(f"http://127.0.0.1:{self.port}/", 1, {}, use_wrk)  # warm up

    def measure(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{PREFIX}/messenger/000000001"
        self.runs.append(drive(url, self.seconds, {}, self.use_wrk))
        return self.runs[-1]

    def summary(self) -> dict[str, Any]:
        rates = sorted(r["rps"] for r in self.runs)
        middle = sorted(self.runs, key=lambda r: r["rps"])[len(self.runs) // 2]
        return {**middle, "runs": len(rates), "min_rps": rates[0], "max_rps": rates[-1]}

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_server(
    url: str, keys: str, log_path: Path, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """`chatapp-accounts serve` on a database, as in production (one worker), with `settings`
    (CHATAPP_* variables) beside the database's. The tenants' limits are counted, as in
    production, but high enough never to refuse the load (bench/limits.py measures them)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_")}
    env.update(UNREFUSED)
    env.update(settings or {})
    env.update(CHATAPP_DATABASE_URL=url, CHATAPP_ENCRYPTION_KEYS=keys)
    with log_path.open("a") as log:  # a restarted server's log follows the first one's
        proc = subprocess.Popen(
            [str(BIN / "chatapp-accounts"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
    return proc, port


UNREFUSED = {
    "CHATAPP_LIMIT_REQUESTS_PER_SECOND": "1000000",
    "CHATAPP_LIMIT_MESSAGES_PER_SECOND": "1000000",
}


def basic_auth(s: Seed) -> dict[str, str]:
    token = base64.b64encode(f"{s.api_key}:{s.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


REMOTE_ACCOUNTS = 10000
REMOTE_WRITERS = 16


def run_remote(
    seconds: float, use_wrk: bool, folder: Path, pg_url: str, logs: Path
) -> dict[str, Any]:
    """PostgreSQL on "another host": the server reaches it through bench/delay_proxy.py, which
    delays every chunk by 0 ms (the proxy alone) and by 1 ms each way. At each delay: creates
    from 16 clients, GET by id alone, and GET while the 16 clients create (both measured)."""
    target = urlsplit(normalise_url(pg_url))
    results: dict[str, Any] = {"accounts": REMOTE_ACCOUNTS, "writers": REMOTE_WRITERS}
    for delay_ms in (0, 1):
        keys = new_key()
        url = fresh_database("postgres", folder, pg_url)
        s = seed(url, keys, REMOTE_ACCOUNTS)
        proxy_port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, str(HERE / "delay_proxy.py"), str(proxy_port),
             target.hostname or "127.0.0.1", str(target.port or 5432), str(delay_ms)],
        )  # fmt: skip
        served = urlsplit(url)._replace(netloc=f"{target.username}@127.0.0.1:{proxy_port}")
        proc, port = start_server(served.geturl(), keys, logs / f"server-remote-{delay_ms}ms.log")
        base = f"http://127.0.0.1:{port}"
        hot_id = f"{(REMOTE_ACCOUNTS // 2) // 4 * 4 + 1:09d}"
        get = (f"{base}{PREFIX}/messenger/{hot_id}", {"headers": basic_auth(s)})
        create = (
            f"{base}{PREFIX}/messenger",
            {"headers": basic_auth(s), "kind": "create", "connections": REMOTE_WRITERS},
        )
        try:
            wait_listening(proxy_port, proxy)
            wait_listening(port, proc)
            for warm in (get, create):
                drive(warm[0], 1, warm[1], use_wrk)
            alone = drive(get[0], seconds, get[1], use_wrk)
            creates = drive(create[0], seconds, create[1], use_wrk)
            with ThreadPoolExecutor(2) as pool:
                writing = pool.submit(drive, create[0], seconds + 1, create[1], use_wrk)
                time.sleep(0.5)  # the writers are under way before the reads are measured
                reading = pool.submit(drive, get[0], seconds, get[1], use_wrk)
                together = {"get": reading.result(), "create": writing.result()}
            results[f"{delay_ms}ms"] = {"get_alone": alone, "create": creates, "while": together}
        finally:
            proc.terminate()
            proc.wait(20)
            proxy.terminate()
            proxy.wait(10)
            drop_database(url, pg_url)
    return results


def run_scale(
    kind: str,
    accounts: int,
    seconds: float,
    use_wrk: bool,
    folder: Path,
    pg_url: str,
    logs: Path,
    ceiling: Ceiling,
) -> dict[str, Any]:
    keys = new_key()
    url = fresh_database(kind, folder, pg_url)
    t0 = time.perf_counter()
    s = seed(url, keys, accounts)
    seeded_in = time.perf_counter() - t0
    proc, port = start_server(url, keys, logs / f"server-{kind}-{accounts}.log")
    base = f"http://127.0.0.1:{port}"
    basic = basic_auth(s)
    now = int(time.time())
    token = jwt.encode(
        {
            "application_id": s.application_id,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        },
        s.private_key,
        algorithm="RS256",
    )
    bearer = {"Authorization": f"Bearer {token}"}
    warm_links = max(1, min(250, accounts // 16))
    hot_id = f"{(accounts // 2) // 4 * 4 + 1:09d}"  # a messenger account in the middle
    last_page = -(-(accounts + 0) // 20)
    scenarios = {
        "get_basic": (f"{base}{PREFIX}/messenger/{hot_id}", {"headers": basic}),
        "get_jwt": (f"{base}{PREFIX}/messenger/{hot_id}", {"headers": bearer}),
        "list_first": (f"{base}{PREFIX}?page_size=20&page_number=1", {"headers": basic}),
        # A latency target: one client. With 32 at once on one process the p99 would be queueing.
        "list_deep": (
            f"{base}{PREFIX}?page_size=20&page_number={max(last_page - 1, 1)}",
            {"headers": basic, "connections": 1},
        ),
        "create": (f"{base}{PREFIX}/messenger", {"headers": basic, "kind": "create"}),
        "link_unlink": (
            f"{base}{PREFIX}",
            {
                "headers": basic,
                "kind": "link_unlink",
                "app": s.application_id,
                # The warm-up links and unlinks Messenger accounts of its own, the measured
                # run the next ones: an unlink of one never meets a link of the other.
                "link_accounts": min(LINK_ACCOUNTS, accounts // 4 - warm_links),
                "link_first": warm_links,
                "prefix": PREFIX,
            },
        ),
    }
    results: dict[str, Any] = {"accounts": accounts, "seeded_in_s": round(seeded_in, 2)}
    try:
        wait_listening(port, proc)
        for name, (target, scenario) in scenarios.items():
            before = ceiling.runs[-1] if ceiling.runs else ceiling.measure()
            warm_up = {**scenario, "link_first": 0, "link_accounts": warm_links}
            drive(target, 1, warm_up, use_wrk)  # warm up (and fill the JWT cache)
            results[name] = drive(target, seconds, scenario, use_wrk)
            results[name]["connections"] = scenario.get("connections", CONNECTIONS)
            results[name]["ceiling_rps"] = (before["rps"] + ceiling.measure()["rps"]) / 2
        results["peak_rss_mb"] = round(peak_rss_mb(proc.pid), 1)
    finally:
        proc.terminate()
        proc.wait(20)
        drop_database(url, pg_url)
    return results


# --- report --------------------------------------------------------------------------------


def report(kind: str, results: dict[str, Any]) -> tuple[str, list[tuple[str, bool, str]]]:
    c = results["ceiling"]
    ceiling = c["rps"]
    scales = results["scales"]
    small, large = scales[0], scales[-1]
    checks: list[tuple[str, bool, str]] = []
    if kind == "sqlite":
        for name, (label, ratio) in TARGETS.items():
            got = large[name]["rps"] / large[name]["ceiling_rps"]
            checks.append((f"{label} >= {ratio:.0%} of ceiling", got >= ratio, f"{got:.1%}"))
        deep = large["list_deep"]["p99_ms"]
        checks.append(
            (f"deep page p99 < 50 ms ({large['accounts']:,} accounts)", deep < 50, f"{deep:.1f} ms")
        )
        growth = large["get_basic"]["p99_ms"] / small["get_basic"]["p99_ms"]
        checks.append(("GET p99 at 1M <= 1.5x at 10k", growth <= 1.5, f"{growth:.2f}x"))
        checks.append(
            (
                "creates >= 1,000/s",
                large["create"]["rps"] >= 1000,
                f"{large['create']['rps']:,.0f}/s",
            )
        )
        rss = max(s["peak_rss_mb"] for s in scales)
        checks.append(("server peak RSS < 150 MB", rss < 150, f"{rss:.0f} MB"))
    else:
        for name, label, ratio in (
            ("get_basic", "GET by id, Basic", 0.25),
            ("get_jwt", "GET by id, JWT", 0.25),
            ("create", "creates", 0.05),
            ("link_unlink", "link+unlink", 0.05),
        ):
            got = large[name]["rps"] / large[name]["ceiling_rps"]
            checks.append((f"{label} >= {ratio:.0%} of ceiling", got >= ratio, f"{got:.1%}"))
        for name in ("create", "link_unlink"):
            p99 = large[name]["p99_ms"]
            checks.append((f"{name} p99 < 50 ms", p99 < 50, f"{p99:.1f} ms"))
    remote_lines: list[str] = []
    if "remote" in results:
        remote_lines, remote_checks = report_remote(results["remote"])
        checks += remote_checks
    lines = [
        f"### {kind}: {results['machine']}, {results['tool']}, {CONNECTIONS} connections, "
        f"{results['seconds']} s per scenario",
        "",
        f"Ceiling (bare ASGI app, same server and settings), measured before the first scenario "
        f"and after each: median **{ceiling:,.0f} req/s** over {c['runs']} runs "
        f"({c['min_rps']:,.0f} to {c['max_rps']:,.0f}), p50 {c['p50_ms']:.2f} ms, "
        f"p99 {c['p99_ms']:.2f} ms. Each ratio is to the mean of the two ceiling runs beside "
        "its scenario.",
        "",
        "| scenario | accounts | connections | req/s | its ceiling req/s | ratio to ceiling "
        "| p50 ms | p99 ms | non-2xx | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scale in scales:
        for name in ("get_basic", "get_jwt", "list_first", "list_deep", "create", "link_unlink"):
            r = scale[name]
            lines.append(
                f"| {name} | {scale['accounts']:,} | {r['connections']} | {r['rps']:,.0f} | "
                f"{r['ceiling_rps']:,.0f} | {r['rps'] / r['ceiling_rps']:.1%} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {scale['peak_rss_mb']} |"
            )
    lines += remote_lines
    lines += ["", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {label} | {'yes' if ok else '**no**'} | {value} |" for label, ok, value in checks]
    return "\n".join(lines) + "\n", checks


def report_remote(remote: dict[str, Any]) -> tuple[list[str], list[tuple[str, bool, str]]]:
    lines = [
        "",
        f"Remote PostgreSQL: one server process, PostgreSQL behind bench/delay_proxy.py, "
        f"{remote['accounts']:,} accounts, {remote['writers']} clients creating.",
        "",
        "| delay each way | creates/s | GET alone req/s | GET alone p99 ms | creates/s while "
        "reading | GET while creating req/s | GET while creating p99 ms | GET kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks: list[tuple[str, bool, str]] = []
    for delay in ("0ms", "1ms"):
        r = remote[delay]
        kept = r["while"]["get"]["rps"] / r["get_alone"]["rps"]
        lines.append(
            f"| {delay[:-2]} ms | {r['create']['rps']:,.0f} | {r['get_alone']['rps']:,.0f} | "
            f"{r['get_alone']['p99_ms']:.1f} | {r['while']['create']['rps']:,.0f} | "
            f"{r['while']['get']['rps']:,.0f} | {r['while']['get']['p99_ms']:.1f} | {kept:.0%} |"
        )
        checks.append(
            (f"{delay[:-2]} ms each way: GET while creating >= 50% of GET alone", kept >= 0.5,
             f"{kept:.0%}")
        )  # fmt: skip
    creates = remote["1ms"]["create"]["rps"] / remote["0ms"]["create"]["rps"]
    checks.append(
        ("1 ms each way: creates/s >= 60% of creates/s at 0 ms", creates >= 0.6, f"{creates:.0%}")
    )
    return lines, checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--accounts", default="10000,1000000", help="comma-separated scales")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 400 accounts, 1 s, loadgen"
    )
    parser.add_argument(
        "--loadgen", action="store_true", help="use bench/loadgen.py even if wrk exists"
    )
    parser.add_argument(
        "--remote-only",
        action="store_true",
        help="PostgreSQL: only the remote-PostgreSQL scenario (part of every postgres run)",
    )
    parser.add_argument("--out", default=str(HERE / "results"), help="where to write the results")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CHATAPP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    scales = [400] if args.quick else [int(n) for n in args.accounts.split(",")]
    seconds = 1.0 if args.quick else args.seconds
    use_wrk = shutil.which("wrk") is not None and not (args.loadgen or args.quick)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "database": args.database,
        "seconds": seconds,
        "tool": "wrk" if use_wrk else "loadgen",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
    }
    if args.remote_only:
        with tempfile.TemporaryDirectory(prefix="chatapp-bench-") as tmp:
            remote = run_remote(seconds, use_wrk, Path(tmp), args.postgres_url, out)
        lines, checks = report_remote(remote)
        table = (
            "\n".join(lines)
            + "\n\n"
            + "\n".join(
                f"| {label} | {'yes' if ok else '**no**'} | {value} |"
                for label, ok, value in checks
            )
            + "\n"
        )
        (out / "postgres-remote.json").write_text(
            json.dumps({**results, "remote": remote}, indent=2)
        )
        (out / "postgres-remote.md").write_text(table)
        print(table)
        return 0
    ceiling = Ceiling(seconds, use_wrk)
    try:
        with tempfile.TemporaryDirectory(prefix="chatapp-bench-") as tmp:
            results["scales"] = [
                run_scale(
                    args.database, n, seconds, use_wrk, Path(tmp), args.postgres_url, out, ceiling
                )
                for n in scales
            ]
            if args.database == "postgres" and not args.quick:
                results["remote"] = run_remote(seconds, use_wrk, Path(tmp), args.postgres_url, out)
        results["ceiling"] = ceiling.summary()
        results["ceiling_runs"] = [r["rps"] for r in ceiling.runs]
    finally:
        ceiling.close()
    table, checks = report(args.database, results)
    results["targets"] = [
        {"target": label, "met": ok, "measured": value} for label, ok, value in checks
    ]
    stem = f"{args.database}{'-quick' if args.quick else ''}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stem}.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
