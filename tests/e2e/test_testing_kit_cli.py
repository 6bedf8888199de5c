"""`chatapp-accounts webhooks receive` and `chatapp-accounts certificates`, as processes."""

from __future__ import annotations

import gc
import json
import re
import shlex
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from requests.exceptions import SSLError
from vonage_http_client import Auth, HttpClient, HttpClientOptions

from chatapp_accounts.security.webhooks import sign_webhook

from .server import EXE, base_env, cli, free_port, new_tenant, running_server
from .test_cli import assert_one_line_error

pytestmark = pytest.mark.e2e
SECRET = "the-tenant-signature-secret-0123456789abcdef"


class Receiving:
    """`webhooks receive` as a process, its output read line by line."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [EXE, "webhooks", "receive", "--port", str(self.port), *args],
            env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_lines(self, count: int, timeout: float = 20) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) >= count, timeout)
            assert len(self.lines) >= count, self.lines
            return list(self.lines)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(15)
        time.sleep(0)  # the reader sees the end of the output
        with self.changed:
            self.changed.wait_for(lambda: self.proc.stdout is None or self.proc.stdout.closed
                                  or bool(self.lines and "stopped" in self.lines[-1]), 5)  # fmt: skip
            return code, "\n".join(self.lines)


def post(port: int, path: str, body: bytes, authorization: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    return httpx.post(f"http://127.0.0.1:{port}{path}", content=body, headers=headers).status_code


def test_webhooks_receive_prints_each_webhook_and_its_signature() -> None:
    receiving = Receiving("--secret", SECRET)
    first = receiving.wait_lines(1)[0]
    assert first == (f"receiving webhooks at http://127.0.0.1:{receiving.port}/ (signatures "
                     "checked with --secret); Ctrl-C stops")  # fmt: skip
    status = json.dumps({"message_uuid": "m-1", "status": "delivered", "channel": "whatsapp"})
    inbound = json.dumps({"message_uuid": "m-2", "message_type": "text", "text": "Hi there!"})
    claims = {"api_key": "k1", "application_id": "app-1"}
    good = sign_webhook(status.encode(), SECRET, **claims)
    wrong = sign_webhook(inbound.encode(), "another-secret-0123456789abcdef0123", **claims)
    tampered = sign_webhook(b"{}", SECRET, **claims)
    assert post(receiving.port, "/status", status.encode(), good) == 200
    assert post(receiving.port, "/inbound", inbound.encode(), wrong) == 200
    assert post(receiving.port, "/status", status.encode(), tampered) == 200
    assert post(receiving.port, "/status", status.encode(), None) == 200
    lines = receiving.wait_lines(5)[1:]
    clock = r"\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(rf"{clock}  POST /status  m-1  status delivered  signature verified",
                        lines[0]), lines  # fmt: skip
    assert re.fullmatch(rf'{clock}  POST /inbound  m-2  inbound text "Hi there!"  signature did '
                        r"not verify: the JWT's HS256 signature does not match the signature "
                        r"secret it was checked with \(a wrong secret, or one replaced since the "
                        r"webhook was signed\)", lines[1]), lines  # fmt: skip
    assert lines[2].endswith(
        "signature did not verify: the JWT's payload_hash is not the SHA-256 "
        "of the body received (the body was changed after it was signed)"
    )
    assert lines[3].endswith("signature did not verify: no Authorization header: the webhook is "
                             "unsigned")  # fmt: skip
    code, output = receiving.stop()
    assert code == 0, output
    assert output.splitlines()[-1] == "stopped; 4 webhooks received"
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert SECRET not in output and "Bearer" not in output and good[7:20] not in output


def test_webhooks_receive_without_a_secret_says_it_does_not_check(tmp_path: Path) -> None:
    receiving = Receiving()
    assert receiving.wait_lines(1)[0].endswith(
        "(signatures not checked: no --secret); Ctrl-C stops"
    )
    body = b'{"message_uuid": "m-3", "status": "submitted"}'
    assert post(receiving.port, "/hooks/status", body, sign_webhook(body, SECRET, api_key="k",
                                                                      application_id="a")) == 200  # fmt: skip
    line = receiving.wait_lines(2)[1]
    assert line.endswith("  POST /hooks/status  m-3  status submitted  signature not checked "
                         "(no --secret)")  # fmt: skip
    code, output = receiving.stop()
    assert code == 0 and "Traceback" not in output


def test_webhooks_receive_reads_the_secret_from_a_file_and_refuses_both(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    receiving = Receiving("--secret-file", str(secret_file))
    receiving.wait_lines(1)
    body = b'{"message_uuid": "m-4", "status": "read"}'
    post(receiving.port, "/s", body, sign_webhook(body, SECRET, api_key="k", application_id="a"))
    assert receiving.wait_lines(2)[1].endswith("status read  signature verified")
    assert receiving.stop()[0] == 0
    both = cli("webhooks", "receive", "--port", str(free_port()), "--secret", "x",
               "--secret-file", str(secret_file), env=base_env())  # fmt: skip
    assert_one_line_error(both, "give --secret or --secret-file, not both")
    missing = cli("webhooks", "receive", "--port", str(free_port()), "--secret-file",
                  str(tmp_path / "none"), env=base_env())  # fmt: skip
    assert_one_line_error(missing, "cannot read --secret-file")
    with running_server(base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3")) as srv:
        taken = int(srv.url.rsplit(":", 1)[1])
        busy = cli("webhooks", "receive", "--port", str(taken), env=base_env())
        assert_one_line_error(busy, f"cannot listen on 127.0.0.1:{taken}")


def test_certificates_serve_https_that_the_vonage_sdk_trusts_through_requests_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "certs"
    made = cli("certificates", "--out", str(out), env=base_env())
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ca.pem", "server.key", "server.pem"]
    assert stat.S_IMODE((out / "server.key").stat().st_mode) == 0o600
    lines = made.stdout.splitlines()
    serve = next(
        line.strip() for line in lines if line.strip().startswith("chatapp-accounts serve")
    )
    export = next(line.strip() for line in lines if line.strip().startswith("export "))
    assert export == f"export REQUESTS_CA_BUNDLE={out / 'ca.pem'}"
    assert "valid 30 days" in lines[0]
    args = shlex.split(serve)[2:]
    assert args[:2] == ["--port", "8443"]
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/tls.sqlite3")
    creds = new_tenant(env)
    with running_server(env, *args[2:]) as server:  # the printed line, on a free port
        host = server.url.removeprefix("http://")
        sdk = HttpClient(Auth(api_key=creds["api_key"], api_secret=creds["api_secret"]),
                         HttpClientOptions(api_host=host, max_retries=0))  # fmt: skip
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(out / "ca.pem"))  # requests does not read it
        with pytest.raises(SSLError):
            sdk.get(host, "/beta/chatapp-accounts", auth_type="basic")
        name, _, value = export.removeprefix("export ").partition("=")
        monkeypatch.setenv(name, value)
        listed = sdk.get(host, "/beta/chatapp-accounts", auth_type="basic")
        assert listed["_embedded"] == [] and listed["total_items"] == 0
        del sdk  # its idle TLS connection closed now: the server's stop need not wait for it
        gc.collect()
    again = cli("certificates", "--out", str(out), env=base_env())
    assert_one_line_error(again, f"{out / 'ca.pem'} exists")
