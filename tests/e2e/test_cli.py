"""The command line, end to end, as a separate process."""

from __future__ import annotations

import json
import shlex
import subprocess

import httpx2 as httpx
import pytest

from .server import base_env, cli, running_server

pytestmark = pytest.mark.e2e


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatapp-accounts: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_tenants_create_list_revoke(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    made = cli("tenants", "create", "--json", env=env)
    assert made.returncode == 0, made.stderr
    creds = json.loads(made.stdout)
    assert set(creds) == {"api_key", "api_secret"}
    assert made.stdout.strip() == json.dumps(creds)
    listed = cli("tenants", "list", "--json", env=env)
    assert [t["api_key"] for t in json.loads(listed.stdout)] == [creds["api_key"]]
    assert creds["api_secret"] not in listed.stdout
    with running_server(env) as server:
        auth = (creds["api_key"], creds["api_secret"])
        assert httpx.get(f"{server.url}/beta/chatapp-accounts", auth=auth).status_code == 200
        revoked = cli("tenants", "revoke", creds["api_key"], env=env)
        assert revoked.returncode == 0
        r = httpx.get(f"{server.url}/beta/chatapp-accounts", auth=auth)
        assert r.status_code == 401
    assert json.loads(cli("tenants", "list", "--json", env=env).stdout)[0]["revoked"] is True
    assert_one_line_error(cli("tenants", "revoke", "nobody", env=env), "nobody")


def test_accounts_provision(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    key = json.loads(cli("tenants", "create", "--json", env=env).stdout)["api_key"]
    for provider in ("viber_service_msg", "whatsapp", "rcs"):
        result = cli(
            "accounts",
            "provision",
            provider,
            "acct-1",
            "--api-key",
            key,
            "--name",
            "N",
            "--json",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {
            "provider": provider,
            "external_id": "acct-1",
            "api_key": key,
            "applications": [],
            "name": "N",
        }
    messenger = cli(
        "accounts",
        "provision",
        "messenger",
        "page-1",
        "--api-key",
        key,
        "--access-token",
        "tok",
        env=env,
    )
    assert messenger.returncode == 0 and "page-1" in messenger.stdout
    assert_one_line_error(
        cli("accounts", "provision", "messenger", "page-2", "--api-key", key, env=env),
        "access_token",
    )
    assert_one_line_error(
        cli("accounts", "provision", "whatsapp", "acct-1", "--api-key", key, env=env),
        "already registered to your account",
    )
    assert_one_line_error(
        cli("accounts", "provision", "whatsapp", "bad id", "--api-key", key, env=env), "external_id"
    )
    assert_one_line_error(
        cli("accounts", "provision", "whatsapp", "x1", "--api-key", "nobody", env=env), "nobody"
    )
    bad_provider = cli("accounts", "provision", "telegram", "x", "--api-key", key, env=env)
    assert bad_provider.returncode == 2 and "Traceback" not in bad_provider.stderr


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"CHATAPP_DATABASE_URL": "mysql://x/y"}, "unsupported database"),
        ({"CHATAPP_DATABASE_URL": "not a url"}, "not a database URL"),
        (
            {"CHATAPP_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"},
            "CHATAPP_ENCRYPTION_KEYS",
        ),
        ({"CHATAPP_PORT": "eighty"}, "CHATAPP_PORT"),
        ({"CHATAPP_ENCRYPTION_KEYS": "short"}, "CHATAPP_ENCRYPTION_KEYS"),
    ],
)
def test_configuration_errors_are_one_line(
    tmp_path: object, settings: dict[str, str], fragment: str
) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3")
    env.update(settings)
    assert_one_line_error(cli("tenants", "list", env=env), fragment)


def test_unreachable_database_is_one_line(tmp_path: object) -> None:
    env = base_env(
        CHATAPP_DATABASE_URL="postgresql://postgres@127.0.0.1:9/x",
        CHATAPP_ENCRYPTION_KEYS="A" * 43,
    )
    assert_one_line_error(cli("db", "upgrade", env=env), "database error")


def test_db_upgrade(db_env: dict[str, str]) -> None:
    result = cli("db", "upgrade", env=base_env(**db_env))
    assert result.returncode == 0, result.stderr
    assert "latest migration" in result.stdout


def test_serve_on_empty_database_prints_a_working_curl_line(tmp_path: object) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/first.sqlite3")
    with running_server(env) as server:
        curl_lines = [
            line.strip() for line in server.output.splitlines() if line.strip().startswith("curl ")
        ]
        assert len(curl_lines) == 1, server.output
        argv = shlex.split(curl_lines[0])
        user, url = argv[argv.index("-u") + 1], argv[-1]
        assert url == f"{server.url}/beta/chatapp-accounts"
        r = httpx.get(url, auth=tuple(user.split(":", 1)))  # what curl would send
        assert r.status_code == 200
        assert r.json()["_embedded"] == []
    assert "api_secret:" in server.output
    # A second start does not make another tenant.
    with running_server(env) as again:
        assert "api_secret" not in again.output


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--ssl-certfile", "/nonexistent.pem"], "both --ssl-certfile and --ssl-keyfile"),
        (
            ["--ssl-certfile", "/nonexistent.pem", "--ssl-keyfile", "/nonexistent.key"],
            "cannot read",
        ),
        (["--ssl-certfile", "README.md", "--ssl-keyfile", "README.md"], "not a certificate"),
    ],
)
def test_serve_tls_flag_errors_are_one_line(
    tmp_path: object, flags: list[str], fragment: str
) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3")
    assert_one_line_error(cli("serve", "--port", "0", *flags, env=env), fragment)
