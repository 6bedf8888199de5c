"""Running it in production: a database outage and recovery, several servers on one
PostgreSQL, metrics across worker processes, graceful shutdown."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx
import pytest

from chatapp_accounts.security.tokens import new_key
from tests.conftest import PgDatabases

from .server import base_env, free_port, new_tenant, running_server

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"


class TcpProxy:
    """A small TCP proxy of the test's own: it forwards to PostgreSQL until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


@pytest.fixture
def pg_env(pg_databases: PgDatabases) -> dict[str, str]:
    return {"CHATAPP_DATABASE_URL": pg_databases.new(), "CHATAPP_ENCRYPTION_KEYS": new_key()}


@pytest.mark.postgres
def test_database_outage_503_then_recovery_without_restart(pg_env: dict[str, str]) -> None:
    parts = urlsplit(pg_env["CHATAPP_DATABASE_URL"])
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    # A unit of work waits 1 s for a connection (not the default 5) before its 503.
    env = base_env(**{**pg_env, "CHATAPP_DATABASE_URL": via_proxy, "CHATAPP_DB_POOL_TIMEOUT": "1"})
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with (
        running_server(env) as server,
        httpx.Client(base_url=server.url, auth=auth, timeout=30) as c,
    ):
        assert (
            c.post(f"{EA}/messenger", json={"external_id": "p1", "access_token": "t"}).status_code
            == 201
        )
        assert c.get("/readyz").status_code == 200
        assert c.get(f"{EA}/messenger/p1").json()["external_id"] == "p1"  # reads' connection open

        proxy.cut()
        for method, url, body in (("GET", f"{EA}/messenger/p1", None), ("GET", EA, None),
                                  ("POST", f"{EA}/messenger", {"external_id": "p2", "access_token": "t"}),
                                  ("GET", "/v2/applications", None)):  # fmt: skip
            r = c.request(method, url, json=body)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert "database cannot be reached" in r.json()["detail"]
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable" and ready.json()["database"] == "unreachable"
        assert ready.json()["reason"]
        assert c.get("/healthz").status_code == 200  # alive all the same

        proxy.start()  # PostgreSQL is back: no restart of the server
        deadline = time.monotonic() + 20
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        assert c.get(f"{EA}/messenger/p1").json()["external_id"] == "p1"
        assert (
            c.post(f"{EA}/messenger", json={"external_id": "p2", "access_token": "t"}).status_code
            == 201
        )
    proxy.cut()


@pytest.mark.postgres
def test_two_servers_on_one_postgresql(pg_env: dict[str, str]) -> None:
    env = base_env(**pg_env)
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with running_server(env) as a, running_server(env) as b:
        servers = [a.url, b.url]
        # Uniqueness: the same page created at once through both servers, many times.
        for i in range(10):
            barrier = Barrier(2)

            def create(url: str, i: int = i, barrier: Barrier = barrier) -> int:
                barrier.wait()
                return httpx.post(f"{url}{EA}/messenger", auth=auth,
                                  json={"external_id": f"u{i}", "access_token": "t"}).status_code  # fmt: skip

            with ThreadPoolExecutor(2) as pool:
                assert sorted(pool.map(create, servers)) == [201, 403]
        # The link race, across servers.
        apps = [httpx.post(f"{a.url}/v2/applications", auth=auth,
                           json={"name": f"a{i}", "capabilities": {"messages": {}}}).json()["id"]
                for i in range(2)]  # fmt: skip
        barrier = Barrier(8)

        def link(i: int) -> int:
            barrier.wait()
            return httpx.post(f"{servers[i % 2]}{EA}/messenger/u0/applications", auth=auth,
                              json={"application": apps[i % 2]}).status_code  # fmt: skip

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(link, range(8)))
        linked = httpx.get(f"{a.url}{EA}/messenger/u0", auth=auth).json()["applications"]
        winner = apps.index(linked[0])
        assert statuses == [200 if i % 2 == winner else 409 for i in range(8)]
        # Pagination: walking pages alternately through both servers sees each account once.
        seen: list[str] = []
        for page in range(1, 5):
            body = httpx.get(
                f"{servers[page % 2]}{EA}?page_size=3&page_number={page}", auth=auth
            ).json()
            seen += [acc["external_id"] for acc in body["_embedded"]]
        assert seen == [f"u{i}" for i in range(10)]


def test_metrics_add_up_across_worker_processes(tmp_path: object) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/w.sqlite3")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    creds = new_tenant(env)
    with running_server(env, "--workers", "2") as server:
        for _ in range(60):
            with httpx.Client(base_url=server.url) as c:  # new connections spread over workers
                c.get(EA, auth=(creds["api_key"], creds["api_secret"]))
        body = ""
        for _ in range(10):
            body = httpx.get(f"{server.url}/metrics").text  # any worker may answer: each sums all
            total = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                        if line.startswith('chatapp_http_requests_total{method="GET",route="/beta/chatapp-accounts",status="200"'))  # fmt: skip
            assert total == 60, body[:2000]


def test_sigterm_finishes_requests_in_flight(tmp_path: object) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/g.sqlite3")
    creds = new_tenant(env)
    import base64

    basic = base64.b64encode(f"{creds['api_key']}:{creds['api_secret']}".encode()).decode()
    body = json.dumps({"external_id": "in-flight", "access_token": "t"}).encode()
    with running_server(env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(
            f"POST {EA}/messenger HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )  # the request is in flight: half its body is sent
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with pytest.raises(OSError):  # no new connections once shutting down
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert server.proc.poll() is None  # still finishing the request in flight
        s.sendall(body[10:])
        response = s.recv(65536)
        s.close()
        assert response.startswith(b"HTTP/1.1 201"), response
        # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status says why it
        # stopped (the convention that systemd and supervisors treat as a clean stop).
        assert server.proc.wait(15) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.output
    with running_server(env) as again:
        r = httpx.get(
            f"{again.url}{EA}/messenger/in-flight", auth=(creds["api_key"], creds["api_secret"])
        )
        assert r.status_code == 200
