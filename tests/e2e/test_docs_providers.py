"""docs/providers.md's tour, run as printed: its first `sh` block (the Meta fake) and its second
(the server in live WhatsApp mode) as background processes, the rest as one script, the way a
reader runs them in three terminals. Only the ports change (free ones instead of 8000, 9001 and
9002), and `.venv/bin/` becomes this interpreter's folder. Everything listens on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from .server import base_env, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "providers.md"
SECTION = "## Try it on one machine"
BIN = str(Path(sys.executable).parent)


def tour() -> str:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/providers.md has no {SECTION!r} section"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def sh_blocks(section: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 3, "the tour needs the fake, the server and the commands"
    return blocks


def localised(text: str, ports: Mapping[int, int]) -> str:
    """The doc's text with its ports replaced (a port only where it is a whole number: the
    tour's phone numbers hold the same digits) and `.venv/bin/` made this venv's."""
    for old, new in ports.items():
        text = re.sub(rf"(?<![0-9]){old}(?![0-9])", str(new), text)
    return text.replace(".venv/bin/", BIN + "/")


@contextlib.contextmanager
def background(
    script: str, cwd: Path, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    """A shell block left running, as in its own terminal (its output in `log`); stopped with
    its process group."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", script],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def first_line(log: Path, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while "\n" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no line (exit status {proc.poll()}):\n{log.read_text()}")
        time.sleep(0.05)
    return log.read_text().split("\n", 1)[0]


def wait_listening(port: int, proc: subprocess.Popen[str], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before listening:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {port}") from None
            time.sleep(0.1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_providers_tour_works_as_printed(tmp_path: Path) -> None:
    section = tour()
    server_port, fake_port, receiver_port = free_port(), free_port(), free_port()
    ports = {8000: server_port, 9001: fake_port, 9002: receiver_port}
    fake_block, serve_block, *rest = (localised(b, ports) for b in sh_blocks(section))
    assert "fake-provider meta" in fake_block and "serve" in serve_block
    # The fake's line as the doc prints it, right after its block.
    printed = re.search(r"```sh\n.*?```\n```\n(meta fake listening on .*?)\n```", section, re.S)
    assert printed is not None, "the doc shows no line of the fake"

    env = base_env(CHATAPP_PORT=str(server_port))  # serve's default port, 8000 in the doc
    fake_log, server_log = tmp_path / "fake.out", tmp_path / "server.out"
    with background(fake_block, tmp_path, env, fake_log) as fake:
        line = first_line(fake_log, fake)
        assert line == localised(printed.group(1), ports), line
        # The server runs with the settings the fake printed.
        for setting in line.split("; set ", 1)[1].split():
            assert setting in serve_block, setting
        with background(serve_block, tmp_path, env, server_log) as server:
            wait_listening(server_port, server, server_log)
            commands = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", "\n".join(rest)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            try:
                out, err = commands.communicate(timeout=180)
            finally:
                stop_group(commands)  # the receiver too, had the script stopped early
            assert commands.returncode == 0, out + err

    assert "\n1158201444\n" in "\n" + out  # the handshake's challenge
    assert "provisioned whatsapp account 447700900100 for " in out
    assert '"provider":"whatsapp"' in out  # linked
    assert len(re.findall(r'^\{"message_uuid":"[0-9a-f-]{36}"\}$', out, re.M)) == 2  # 202s
    assert "447700900123 ['submitted', 'delivered']" in out
    assert (
        "447700900026 ['rejected'] 1300 Not part of the provider network - Graph error 131026:"
        in out
    )
    assert '"acknowledged":true' in out
    log = (tmp_path / "webhooks.log").read_text()
    assert log.count("/status ") == 3, log  # submitted, delivered; rejected
    assert '"status":"delivered"' in log and '"title":"1300"' in log
    inbound = [hook for hook in log.splitlines() if hook.startswith("/inbound ")]
    assert len(inbound) == 1 and '"text":"Hi back"' in inbound[0], log
    assert "POST /v21.0/100200300400/messages header 447700900123 200" in out
    assert "POST /v21.0/100200300400/messages header 447700900026 400" in out
    assert 'chatapp_provider_calls_total{outcome="ok",provider="meta"} 1.0' in out
    assert 'chatapp_send_tries_total{outcome="refused"} 1.0' in out
    # The token, given on standard input, is in no output, log or webhook, nor stored in clear.
    assert "EAAG-tour-token" not in out + err + server_log.read_text() + log
    for stored in tmp_path.glob("chatapp-accounts.sqlite3*"):
        assert b"EAAG-tour-token" not in stored.read_bytes(), stored.name
