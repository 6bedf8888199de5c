"""The command line, end to end, as a separate process."""

from __future__ import annotations

import json
import shlex
import socket
import stat
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest

from .server import base_env, cli, free_port, new_tenant, running_server

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
    assert cli("db", "upgrade", env=env).returncode == 0
    made = cli("tenants", "create", "--json", env=env)
    assert made.returncode == 0, made.stderr
    creds = json.loads(made.stdout)
    assert set(creds) == {"api_key", "api_secret", "signature_secret"}
    assert made.stdout.strip() == json.dumps(creds)
    listed = cli("tenants", "list", "--json", env=env)
    assert [t["api_key"] for t in json.loads(listed.stdout)] == [creds["api_key"]]
    assert creds["api_secret"] not in listed.stdout
    assert creds["signature_secret"] not in listed.stdout
    with running_server(env) as server:
        auth = (creds["api_key"], creds["api_secret"])
        assert httpx.get(f"{server.url}/beta/chatapp-accounts", auth=auth).status_code == 200
        revoked = cli("tenants", "revoke", creds["api_key"], env=env)
        assert revoked.returncode == 0
        r = httpx.get(f"{server.url}/beta/chatapp-accounts", auth=auth)
        assert r.status_code == 401
    assert json.loads(cli("tenants", "list", "--json", env=env).stdout)[0]["revoked"] is True
    assert_one_line_error(cli("tenants", "revoke", "nobody", env=env), "nobody")


def test_an_rbm_key_that_is_not_an_rsa_key_refuses_to_start(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"client_email": "a@b.c", "private_key":
                               "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"}))  # fmt: skip
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/k.sqlite3", CHATAPP_RCS_MODE="live",
                   CHATAPP_RBM_SERVICE_ACCOUNT_FILE=str(key), CHATAPP_RBM_CLIENT_TOKEN="t")  # fmt: skip
    assert_one_line_error(cli("serve", env=env, timeout=30), "not a PEM RSA private key")


def test_provisioning_a_live_whatsapp_number(tmp_path: Path) -> None:
    """The Cloud API ids and token together (all or none), the token from a flag, a file or
    standard input, never both; never echoed."""
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/p.sqlite3")
    key = new_tenant(env)["api_key"]
    live = ["--api-key", key, "--phone-number-id", "pn-1", "--waba-id", "w-1"]
    token_file = tmp_path / "token.txt"
    token_file.write_text("EAAB-from-a-file\n")
    for args, fragment in (
        (["--access-token", "T", "--access-token-file", str(token_file)], "not both"),
        (["--access-token-file", str(tmp_path / "none.txt")], "cannot read --access-token-file"),
        (["--phone-number-id", "pn-1", "--api-key", key], "phone_number_id, waba_id and access"),
    ):
        result = cli("accounts", "provision", "whatsapp", "447700900001", *live[:2], *args, env=env)
        assert_one_line_error(result, fragment)
    done = cli("accounts", "provision", "whatsapp", "447700900001", *live, "--access-token-file",
               str(token_file), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "EAAB" not in done.stdout + done.stderr
    taken = cli("accounts", "provision", "whatsapp", "447700900002", *live, "--access-token", "T",
                env=env)  # fmt: skip
    assert_one_line_error(taken, "The phone_number_id 'pn-1' belongs to another account")
    other = cli("accounts", "provision", "rcs", "agent-1", "--api-key", key, "--waba-id", "w",
                env=env)  # fmt: skip
    assert_one_line_error(other, "only a whatsapp account has a waba_id")


def test_accounts_provision(db_env: dict[str, str]) -> None:
    env = base_env(**db_env)
    key = new_tenant(env)["api_key"]
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
    assert bad_provider.returncode == 2
    assert_one_line_error(bad_provider, "invalid choice: 'telegram'")
    # An argument that is not UTF-8 (Python keeps its bytes as lone surrogates).
    not_utf8 = cli(
        "accounts", "provision", "whatsapp", "x2", "--api-key", key, "--name", b"a\x85b", env=env
    )
    assert not_utf8.returncode == 2
    assert_one_line_error(not_utf8, "argument 8 is not valid UTF-8")
    listed = cli("tenants", "list", env=env)
    assert listed.returncode == 0 and "x2" not in listed.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("tenants", "create"),
        ("tenants", "list", "--json"),
        ("tenants", "revoke", "somebody"),
        ("accounts", "provision", "whatsapp", "447700900000", "--api-key", "somebody"),
        ("secrets", "rotate"),
    ],
)
def test_commands_other_than_serve_never_create_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Run in the wrong folder, a command says where it looked instead of making an empty
    database there whose credentials no running server knows."""
    result = cli(*command, env=base_env(), cwd=tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result, f"no database at {tmp_path / 'chatapp-accounts.sqlite3'}")
    assert list(tmp_path.iterdir()) == []


def test_serve_names_its_database_and_keeps_it_private(tmp_path: Path) -> None:
    with running_server(base_env(), cwd=tmp_path) as server:
        httpx.get(f"{server.url}/healthz")
    database = tmp_path / "chatapp-accounts.sqlite3"
    assert f"Embedded database: {database}" in server.output
    made = [p for p in tmp_path.iterdir() if p.name.startswith("chatapp-accounts.sqlite3")]
    assert database in made and database.with_name(database.name + ".key") in made
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = cli("tenants", "list", env=base_env(), cwd=tmp_path)  # the same folder: found
    assert again.returncode == 0 and again.stdout.strip()


@pytest.mark.parametrize(
    ("settings", "flags", "fragment"),
    [
        ({}, ["--port", "99999"], "--port must be a port from 1 to 65535, got 99999"),
        ({}, ["--port", "0"], "--port must be a port from 1 to 65535"),
        ({"CHATAPP_PORT": "70000"}, [], "CHATAPP_PORT must be a port from 1 to 65535"),
        ({"CHATAPP_PUBLIC_BASE_URL": "notaurl"}, [], "CHATAPP_PUBLIC_BASE_URL"),
        ({"CHATAPP_PUBLIC_BASE_URL": "ftp://example.com"}, [], "CHATAPP_PUBLIC_BASE_URL"),
        ({"CHATAPP_PUBLIC_BASE_URL": "https://example.com/?a=1"}, [], "without a query"),
        ({"CHATAPP_PUBLIC_BASE_URL": "https://example.com/#top"}, [], "CHATAPP_PUBLIC_BASE_URL"),
        ({"CHATAPP_PUBLIC_BASE_URL": "https:///path"}, [], "CHATAPP_PUBLIC_BASE_URL"),
        ({"CHATAPP_ENCRYPTION_KEYS": ","}, [], "CHATAPP_ENCRYPTION_KEYS lists no key"),
        # Live channels (docs/providers.md): a missing or malformed setting is named.
        ({"CHATAPP_VIBER_SERVICE_MODE": "live"}, [], "partner-only API"),
        ({"CHATAPP_WHATSAPP_MODE": "on"}, [], "CHATAPP_WHATSAPP_MODE must be one of sandbox"),
        ({"CHATAPP_WHATSAPP_MODE": "live"}, [], "CHATAPP_META_APP_SECRET must be set"),
        (
            {"CHATAPP_MESSENGER_MODE": "live", "CHATAPP_META_APP_SECRET": "s"},
            [],
            "CHATAPP_META_VERIFY_TOKEN must be set",
        ),
        ({"CHATAPP_META_GRAPH_URL": "graph.facebook.com"}, [], "CHATAPP_META_GRAPH_URL must be"),
        ({"CHATAPP_RCS_MODE": "live"}, [], "CHATAPP_RBM_SERVICE_ACCOUNT_FILE must be set"),
        (
            {"CHATAPP_RCS_MODE": "live", "CHATAPP_RBM_SERVICE_ACCOUNT_FILE": "/no/such.json"},
            [],
            "CHATAPP_RBM_SERVICE_ACCOUNT_FILE: cannot read '/no/such.json'",
        ),
        (
            {"CHATAPP_RCS_MODE": "live", "CHATAPP_RBM_SERVICE_ACCOUNT_FILE": "/etc/hostname"},
            [],
            "is not JSON",
        ),
        ({"CHATAPP_WHATSAPP_RATE": "0"}, [], "CHATAPP_WHATSAPP_RATE must be"),
        ({}, ["--host", "192.0.2.1", "--port", "8000"], "cannot listen on 192.0.2.1:8000"),
        ({}, ["--host", "no-such-host.invalid", "--port", "8000"], "cannot listen on"),
    ],
)
def test_serve_checks_its_settings_before_serving(
    tmp_path: Path, settings: dict[str, str], flags: list[str], fragment: str
) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/s.sqlite3", **settings)
    result = cli("serve", *flags, env=env, timeout=30)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "s.sqlite3").exists()


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/s.sqlite3")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), env=env, timeout=30)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"CHATAPP_DATABASE_URL": "mysql://x/y"}, "unsupported database"),
        # Nothing makes a missing folder; the two-slash slip is named (issue 23).
        (
            {"CHATAPP_DATABASE_URL": "sqlite:///no/such/dir/x.sqlite3"},
            "the folder 'no/such/dir' does not exist",
        ),
        ({"CHATAPP_DATABASE_URL": "sqlite://x.db"}, "three slashes, sqlite:///x.db"),
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
    assert cli("db", "upgrade", env=env).returncode == 0
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
    assert_one_line_error(cli("serve", "--port", str(free_port()), *flags, env=env), fragment)


def test_signature_secrets_are_sealed_at_rest_and_replaced_on_demand(
    db_env: dict[str, str],
) -> None:
    """`tenants create` shows the webhook signature secret once; the database holds it
    encrypted, bound to its tenant; `tenants signature-secret` replaces it."""
    from sqlalchemy import select

    from chatapp_accounts.config import settings_from_env
    from chatapp_accounts.security.tokens import load_cipher, signature_binding
    from chatapp_accounts.storage.engine import make_engine
    from chatapp_accounts.storage.tables import tenants

    env = base_env(**db_env)
    creds = new_tenant(env)
    settings = settings_from_env(env)

    def stored() -> bytes:
        engine = make_engine(settings.database_url)
        with engine.connect() as conn:
            blob = conn.execute(select(tenants.c.signature_secret)).scalar_one()
        engine.dispose()
        return bytes(blob)

    cipher = load_cipher(settings)
    sealed = stored()
    assert creds["signature_secret"].encode() not in sealed
    assert cipher.decrypt(sealed, signature_binding(creds["api_key"])) == creds["signature_secret"]
    replaced = cli("tenants", "signature-secret", creds["api_key"], "--json", env=env)
    assert replaced.returncode == 0, replaced.stderr
    fresh = json.loads(replaced.stdout)
    assert fresh["api_key"] == creds["api_key"]
    assert (
        len(fresh["signature_secret"]) == 32
        and fresh["signature_secret"] != creds["signature_secret"]
    )
    assert (
        cipher.decrypt(stored(), signature_binding(creds["api_key"])) == fresh["signature_secret"]
    )
    assert_one_line_error(cli("tenants", "signature-secret", "nobody", env=env), "nobody")


def test_an_empty_webhook_list_says_so(tmp_path: Path) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/w.sqlite3")
    assert cli("db", "upgrade", env=env).returncode == 0
    listed = cli("webhooks", "list", "--state", "failed", env=env)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no webhooks failed\n", "")
    assert cli("webhooks", "list", "--json", env=env).stdout.strip() == "[]"


def test_sandbox_faults_prints_and_sets_an_accounts_switches(tmp_path: Path) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/f.sqlite3")
    creds = new_tenant(env)
    made = cli("accounts", "provision", "messenger", "page-1", "--api-key", creds["api_key"],
               "--access-token", "tok", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr

    def faults(*options: str) -> str:
        done = cli("sandbox", "faults", "messenger", "page-1", *options, env=env)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        return done.stdout

    assert faults() == "messenger page-1: delay none, fail none\n"
    assert faults("--delay", "2.5") == "messenger page-1: delay 2.5 s, fail none\n"
    assert faults("--fail", "rejected") == "messenger page-1: delay 2.5 s, fail rejected\n"
    assert json.loads(faults("--json")) == {"delay": 2.5, "fail": "rejected"}
    # Refused: one line, nothing changed.
    assert_one_line_error(cli("sandbox", "faults", "messenger", "page-1", "--delay", "60",
                              env=env), "delay: must be a number of seconds from 0 to 9")  # fmt: skip
    assert_one_line_error(cli("sandbox", "faults", "messenger", "page-1", "--delay", "soon",
                              env=env), "not a number of seconds: 'soon'")  # fmt: skip
    assert_one_line_error(cli("sandbox", "faults", "messenger", "page-1", "--fail", "lost",
                              env=env), "invalid choice: 'lost'")  # fmt: skip
    assert_one_line_error(cli("sandbox", "faults", "messenger", "no-page", env=env),
                          "Account not found")  # fmt: skip
    assert_one_line_error(cli("sandbox", "faults", "whatsapp", "page-1", "--fail", "none",
                              env=env), "Account not found")  # fmt: skip
    with running_server(env) as server:  # the API sees what the command set, and the reverse
        url = f"{server.url}/sandbox/v1/accounts/messenger/page-1/faults"
        auth = (creds["api_key"], creds["api_secret"])
        assert httpx.get(url, auth=auth).json() == {"delay": 2.5, "fail": "rejected"}
        assert httpx.put(url, json={"fail": "undeliverable"}, auth=auth).status_code == 200
        assert faults() == "messenger page-1: delay none, fail undeliverable\n"
    assert faults("--fail", "none", "--delay", "0") == "messenger page-1: delay none, fail none\n"


def test_messages_redact_removes_a_messages_content(tmp_path: Path) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/r.sqlite3")
    creds = new_tenant(env)
    other = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    hooks = {"inbound_url": {"address": "https://example.com/in", "http_method": "POST"},
             "status_url": {"address": "https://example.com/st", "http_method": "POST"}}  # fmt: skip
    with running_server({**env, "CHATAPP_DISPATCHER": "false"}) as server:
        app = httpx.post(f"{server.url}/v2/applications", auth=auth, json={
            "name": "a", "capabilities": {"messages": {"webhooks": hooks}}}).json()  # fmt: skip
        made = httpx.post(f"{server.url}/beta/chatapp-accounts/messenger", auth=auth, json={
            "external_id": "page-1", "access_token": "tok", "applications": [app["id"]]})  # fmt: skip
        assert made.status_code == 201, made.text
    sent = cli("sandbox", "inbound", "messenger", "page-1", "customer-1", "--text",
               "a private word", "--json", env=env)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    uuid = json.loads(sent.stdout)["message_uuid"]
    assert_one_line_error(cli("messages", "redact", uuid, "--api-key", other["api_key"],
                              env=env), "No message found with that ID")  # fmt: skip
    assert_one_line_error(cli("messages", "redact", "nope", env=env), "No message found")
    done = cli("messages", "redact", uuid, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"redacted {uuid}\n", "")
    listed = json.loads(cli("sandbox", "messages", "--json", env=env).stdout)
    assert listed["messages"][0]["message_uuid"] == uuid
    assert listed["messages"][0]["content"] == {"redacted": True}
    assert "private word" not in json.dumps(listed)
