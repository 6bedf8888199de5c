"""The real server process: a link race across two worker processes, and the README tour."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx2 as httpx
import pytest

from .server import base_env, cli, new_tenant, running_server

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


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_readme_tour_works_as_written(tmp_path: Path) -> None:
    # The tour's webhooks go to example.com: nothing is sent (tests talk only to 127.0.0.1); the
    # tour's sends are still accepted, stored and listed.
    env = base_env(
        CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/tour.sqlite3", CHATAPP_DISPATCHER="false"
    )
    script = tour_script().replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    with running_server(env) as server:
        env["API"] = server.url
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert '"provider":"messenger"' in out
        assert out.count("204") >= 2
        tenants = json.loads(cli("tenants", "list", "--json", env=env).stdout)
        # serve made the first tenant; the tour made the second and used it.
        assert len(tenants) == 2
    assert os.path.exists(tmp_path / "tour.sqlite3.key")
