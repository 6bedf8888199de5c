"""The real server process: a link race across two worker processes, and the README tour."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx2 as httpx
import pytest

from .server import EXE, base_env, cli, free_port, new_tenant, running_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EA = "/beta/chatapp-accounts"


def test_link_race_across_worker_processes(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with running_server(env, "--workers", "2") as server:
        with httpx.Client(base_url=server.url, auth=auth, timeout=30) as c:
            app_ids = [
                c.post(
                    "/v2/applications", json={"name": f"a{i}", "capabilities": {"messages": {}}}
                ).json()["id"]
                for i in range(2)
            ]
            r = c.post(f"{EA}/messenger", json={"external_id": "race", "access_token": "t"})
            assert r.status_code == 201
        racers = 16
        barrier = Barrier(racers)

        def attempt(i: int) -> int:
            with httpx.Client(base_url=server.url, auth=auth, timeout=30) as c:
                barrier.wait()
                return c.post(
                    f"{EA}/messenger/race/applications", json={"application": app_ids[i % 2]}
                ).status_code

        with ThreadPoolExecutor(racers) as pool:
            statuses = list(pool.map(attempt, range(racers)))
        # The winner's application may be linked again (200, no change); the other always loses.
        linked = httpx.get(f"{server.url}{EA}/messenger/race", auth=auth).json()["applications"]
        assert len(linked) == 1
        winner = app_ids.index(linked[0])
        for i, status in enumerate(statuses):
            assert status == (200 if i % 2 == winner else 409), statuses


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Five-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert blocks, "the README tour has no sh blocks"
    return "\n".join(blocks)


def _printed(output: str, name: str) -> str:
    found = re.search(rf"^\s*{name}:\s+(\S+)", output, re.M)
    assert found is not None, output
    return found.group(1)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_readme_tour_works_as_written(tmp_path: Path) -> None:
    """The tour as a newcomer takes it: the credentials `serve` printed, the application's
    webhooks at `webhooks receive` (started as the README says), every webhook arriving there
    signed, the inbox signing in with the same credentials."""
    env = base_env(
        CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/tour.sqlite3",
        CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS="0.2",
    )
    script = tour_script().replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    port = free_port()
    with running_server(env) as server:
        signing = _printed(server.output, "signature_secret")
        receiver = subprocess.Popen(
            [EXE, "webhooks", "receive", "--port", str(port), "--secret", signing],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            tour_env = {**env, "API": server.url, "HOOKS": f"http://127.0.0.1:{port}",
                        "KEY": _printed(server.output, "api_key"),
                        "SECRET": _printed(server.output, "api_secret")}  # fmt: skip
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=ROOT,
                env=tour_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            out = result.stdout
            assert '"provider":"messenger"' in out
            assert out.count("204") >= 2
            assert f"{tour_env['HOOKS']}/webhooks/status" in out  # the PUT's new URLs
            with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as browser:
                login = browser.get("/inbox/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
                assert token is not None
                signed_in = browser.post("/inbox/login", data={
                    "api_key": tour_env["KEY"], "api_secret": tour_env["SECRET"],
                    "csrf_token": token.group(1)})  # fmt: skip
                assert signed_in.status_code == 200 and "Hello" in signed_in.text
                assert "Hi back" in signed_in.text
            lines = _receiver_lines(receiver, 3)
        finally:
            receiver.terminate()
            receiver.wait(timeout=10)
        # serve made the first tenant, and the tour used it.
        tenants = json.loads(cli("tenants", "list", "--json", env=env).stdout)
        assert len(tenants) == 1
    seen = "\n".join(lines)
    assert "/webhooks/status" in seen and "status delivered" in seen, seen
    assert "/webhooks/inbound" in seen and '"Hi back"' in seen, seen
    assert "did not verify" not in seen and seen.count("signature verified") >= 3, seen
    assert os.path.exists(tmp_path / "tour.sqlite3.key")


def _receiver_lines(receiver: subprocess.Popen[str], webhooks: int) -> list[str]:
    """The receiver's lines once it has printed `webhooks` webhooks (or after 30 s)."""
    assert receiver.stdout is not None
    stream = receiver.stdout
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum("signature" in x for x in lines[1:]) < webhooks:
        time.sleep(0.1)
    return list(lines)
