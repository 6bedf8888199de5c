"""Start `chatapp-accounts` as a real process, the way a user does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chatapp_accounts.domain.limits import LIMIT_MAX

EXE = str(Path(sys.executable).parent / "chatapp-accounts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(
    *args: str | bytes, env: Mapping[str, str], timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def new_tenant(env: Mapping[str, str]) -> dict[str, str]:
    """`tenants create --json` on the database `env` names, made first with `db upgrade` (no
    command but `serve` and `db upgrade` creates an embedded database)."""
    upgraded = cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    made = cli("tenants", "create", "--json", env=env)
    assert made.returncode == 0, made.stderr
    creds: dict[str, str] = json.loads(made.stdout)
    return creds


# The tenants' limits counted but never reached: these tests are about other things (those
# about limits set their own, tests/integration/test_limits.py, test_limits_two_servers.py).
UNREFUSED = {
    "CHATAPP_LIMIT_REQUESTS_PER_SECOND": str(LIMIT_MAX),
    "CHATAPP_LIMIT_MESSAGES_PER_SECOND": str(LIMIT_MAX),
}


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAPP_")}
    env.update(UNREFUSED)
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextmanager
def running_server(
    env: Mapping[str, str], *args: str, timeout: float = 30, cwd: Path | None = None
) -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen(
        [EXE, "serve", "--port", str(port), *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", proc)
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(
        target=lambda: server.lines.extend(iter(stdout.readline, "")), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                reader.join(5)
                raise AssertionError(f"server exited {proc.returncode}:\n{server.output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"server did not listen:\n{server.output}") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        reader.join(5)
