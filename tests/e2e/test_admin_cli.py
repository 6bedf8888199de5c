"""Operators without a shell (docs/operations.md), end to end: admin tokens made, listed and
revoked with the command line; the document's shell lines run as printed against a server; the
command line's changes and the API's in one audit log, exported as JSON lines, never with a
secret; one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from .server import EXE, base_env, cli, new_tenant, running_server
from .test_cli import assert_one_line_error

pytestmark = pytest.mark.e2e
DOC = Path(__file__).parents[2] / "docs" / "operations.md"


def shell_blocks(heading: str) -> str:
    """The ```sh blocks of the document's section `heading`."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


def test_admin_tokens_and_the_documented_lines(db_env: dict[str, str], tmp_path: Path) -> None:
    env = base_env(**db_env)
    alice = new_tenant(env)
    made = cli("admin-tokens", "create", "--name", "watcher", "--scope", "read", "--json", env=env)
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)
    assert token["name"] == "watcher" and token["scopes"] == ["read"]
    listed = cli("admin-tokens", "list", "--json", env=env)
    assert [t["name"] for t in json.loads(listed.stdout)] == ["watcher"]
    assert token["token"] not in listed.stdout
    assert_one_line_error(cli("admin-tokens", "create", "--name", "watcher", "--scope", "read",
                              env=env), "exists")  # fmt: skip
    assert_one_line_error(cli("admin-tokens", "create", "--name", "x", "--scope", "root",
                              env=env), "scope")  # fmt: skip
    assert_one_line_error(cli("admin-tokens", "revoke", "nobody", env=env), "nobody")

    with running_server(env) as server:
        admin = f"{server.url}/admin/v1"
        reader = {"Authorization": f"Bearer {token['token']}"}
        assert httpx.get(f"{admin}/tenants", headers=reader).status_code == 200
        assert httpx.post(f"{admin}/tenants", headers=reader).status_code == 403
        basic = (alice["api_key"], alice["api_secret"])
        assert httpx.get(f"{admin}/tenants", auth=basic).status_code == 401

        # The document's lines, as printed (its server address made this one's).
        script = shell_blocks("Admin tokens")
        script += "\n" + shell_blocks("Endpoints").replace("http://127.0.0.1:8000", server.url)
        run_env = {**env, "PATH": f"{Path(EXE).parent}{os.pathsep}{env.get('PATH', '')}"}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=run_env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert '"suspended":true' in done.stdout and '"openapi"' in done.stdout
        assert '"effective":{"requests_per_second":50,"messages_per_second":10}' in done.stdout
        assert '"provider":"rcs"' in done.stdout and '"applications":["' in done.stdout
        assert "my-page-token" not in done.stdout and "cloud-api-token" not in done.stdout

        assert cli("admin-tokens", "revoke", "watcher", env=env).returncode == 0
        assert httpx.get(f"{admin}/tenants", headers=reader).status_code == 401

    # The CLI's doors: every failed webhook redelivered, suspend (revoke), resume, delete.
    key = alice["api_key"]
    again = cli("webhooks", "redeliver", "--failed", "--tenant", key, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"redelivered": 0, "skipped_content_removed": 0}
    assert_one_line_error(cli("webhooks", "redeliver", "--failed", "--until", "later", env=env),
                          "until")  # fmt: skip
    assert_one_line_error(cli("webhooks", "redeliver", "7", "--failed", env=env), "not both")
    listed = cli("webhooks", "list", "--tenant", key, "--since", "2999-01-01", env=env)
    assert listed.returncode == 0 and listed.stdout == "no webhooks\n", listed.stderr
    # Changes to an account name its tenant in the audit log (the account's, looked up).
    for args in (("accounts", "provision", "messenger", "page-x", "--api-key", key,
                  "--access-token", "tok-1"),
                 ("accounts", "set-token", "messenger", "page-x", "--access-token", "tok-2"),
                 ("sandbox", "faults", "messenger", "page-x", "--delay", "0.5")):  # fmt: skip
        done = cli(*args, env=env)
        assert done.returncode == 0, done.stderr
    assert cli("tenants", "revoke", key, env=env).returncode == 0
    assert cli("tenants", "resume", key, env=env).returncode == 0
    assert json.loads(cli("tenants", "list", "--json", env=env).stdout)[0]["revoked"] is False
    assert_one_line_error(cli("tenants", "delete", key, env=env), "--yes")
    assert cli("tenants", "delete", key, "--yes", env=env).returncode == 0
    assert key not in cli("tenants", "list", "--json", env=env).stdout

    exported = cli("audit", "export", env=env)
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    actions = [(e["actor"], e["action"], e["outcome"]) for e in entries]
    assert actions[0] == ("cli", "tenants.create", "ok")
    assert ("cli", "admin-tokens.create", "ok") in actions
    assert ("ops-ci", "tenants.create", "ok") in actions
    assert ("ops-ci", "tenants.delete", "ok") in actions
    for action in ("provision", "link", "unlink", "set-token", "delete"):
        assert ("ops-ci", f"accounts.{action}", "ok") in actions
    assert ("cli", "admin-tokens.revoke", "error: AdminTokenNotFound: no admin token named "
            "'nobody'") in actions  # fmt: skip
    api_rows = [e for e in entries if e["actor"] == "ops-ci"]
    assert api_rows and all(e["request_id"] for e in api_rows)
    assert all(e["request_id"] is None for e in entries if e["actor"] == "cli")
    for secret in (alice["api_secret"], alice["signature_secret"], token["token"],
                   "my-page-token", "my-cloud-api-token", "my-new-cloud-api-token"):  # fmt: skip
        assert secret not in exported.stdout
    assert all("error" not in e["outcome"] for e in api_rows)

    mine = cli("audit", "export", "--tenant", key, "--actor", "cli", env=env).stdout.splitlines()
    assert [(json.loads(line)["action"], json.loads(line)["outcome"]) for line in mine] == [
        ("tenants.create", "ok"),
        ("webhooks.redeliver-failed", "ok: 0 redelivered, 0 skipped (content removed)"),
        ("accounts.provision", "ok"), ("accounts.set-token", "ok"), ("sandbox.faults", "ok"),
        ("tenants.suspend", "ok"), ("tenants.resume", "ok"), ("tenants.delete", "ok")]  # fmt: skip
    assert cli("audit", "export", "--since", "2999-01-01", env=env).stdout == ""
    assert_one_line_error(cli("audit", "export", "--since", "soon", env=env), "since")
