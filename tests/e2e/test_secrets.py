"""Secrets: key rotation while serving, and no secret in any log line of a full run."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from chatapp_accounts.security.tokens import TokenCipher, new_key
from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.tables import accounts, tenants
from tests.jwt_tokens import sdk_token

from .server import base_env, cli, new_tenant, running_server

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"


def stored_key_ids(url: str) -> set[bytes]:
    engine = make_engine(url)
    with engine.connect() as conn:
        blobs = [
            *conn.execute(
                select(accounts.c.access_token).where(accounts.c.access_token.is_not(None))
            ),
            *conn.execute(
                select(tenants.c.signature_secret).where(tenants.c.signature_secret.is_not(None))
            ),
        ]
        ids = {bytes(b[0])[1:5] for b in blobs}
        assert len(blobs) > 1
    engine.dispose()
    return ids


def test_rotation_while_serving(db_env: dict[str, str]) -> None:
    old, new = new_key(), new_key()
    url = db_env["CHATAPP_DATABASE_URL"]
    env = base_env(**{**db_env, "CHATAPP_ENCRYPTION_KEYS": old})
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    with running_server(env) as server:
        for i in range(60):
            r = httpx.post(
                f"{server.url}{EA}/messenger",
                auth=auth,
                json={"external_id": f"page-{i}", "access_token": f"token-{i}"},
            )
            assert r.status_code == 201
    assert stored_key_ids(url) == {TokenCipher.from_texts([old]).primary_key_id}

    both = {**env, "CHATAPP_ENCRYPTION_KEYS": f"{new},{old}"}
    expected = {f"page-{i}": f"token-{i}" for i in range(60)}
    failures: list[str] = []
    stop = threading.Event()
    with running_server(both) as server:

        def traffic() -> None:
            n = 0
            with httpx.Client(base_url=server.url, auth=auth, timeout=30) as c:
                while not stop.is_set():
                    page = f"page-{n % 60}"
                    if n % 3 == 0:
                        token = f"changed-{n}"
                        r = c.patch(f"{EA}/messenger/{page}", json={"access_token": token})
                        if r.status_code == 200:
                            expected[page] = token
                    else:
                        r = c.get(f"{EA}/messenger/{page}")
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    n += 1

        worker = threading.Thread(target=traffic)
        worker.start()
        rotated = cli("secrets", "rotate", env=both)
        stop.set()
        worker.join(30)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted" in rotated.stdout
    assert failures == []
    assert stored_key_ids(url) == {TokenCipher.from_texts([new]).primary_key_id}

    only_new = {**env, "CHATAPP_ENCRYPTION_KEYS": new}  # the old key is gone
    with running_server(only_new) as server, httpx.Client(base_url=server.url, auth=auth) as c:
        for page, token in expected.items():
            assert c.get(f"{EA}/messenger/{page}").json()["access_token"] == token
    again = cli("secrets", "rotate", env=only_new)
    # 60 access tokens and the tenant's signature secret
    assert "re-encrypted 0 stored secrets" in again.stdout and "61 already were" in again.stdout


def test_rotate_with_a_missing_key_is_one_line(db_env: dict[str, str]) -> None:
    env = base_env(**{**db_env, "CHATAPP_ENCRYPTION_KEYS": new_key()})
    creds = new_tenant(env)
    cli(
        "accounts",
        "provision",
        "messenger",
        "p1",
        "--api-key",
        creds["api_key"],
        "--access-token",
        "t",
        env=env,
    )
    wrong = {**env, "CHATAPP_ENCRYPTION_KEYS": new_key()}
    result = cli("secrets", "rotate", env=wrong)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("chatapp-accounts: error: a stored token cannot be decrypted")


def test_no_secret_reaches_a_log(tmp_path: Path) -> None:
    """A full run at debug level, with every kind of request and error; then search the logs."""
    db = tmp_path / "logs.sqlite3"
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{db}", CHATAPP_LOG_LEVEL="debug")
    creds = new_tenant(env)
    auth = (creds["api_key"], creds["api_secret"])
    secrets: list[str] = [creds["api_secret"], creds["signature_secret"]]
    replaced = cli("tenants", "signature-secret", creds["api_key"], env=env)
    secrets.append(replaced.stdout.split()[1])  # "signature_secret: <secret> (...)"
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        app = c.post(
            "/v2/applications", auth=auth, json={"name": "a", "capabilities": {"messages": {}}}
        ).json()
        private_key = app["keys"]["private_key"]
        secrets += [line for line in private_key.splitlines() if "PRIVATE KEY" not in line]
        token = sdk_token(app["id"], private_key)
        secrets.append(token)
        bearer = {"Authorization": f"Bearer {token}"}
        secrets.append(base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        for i in range(3):
            access = f"EAAG-page-token-{i}-s3cr3t"
            secrets.append(access)
            c.post(
                f"{EA}/messenger",
                headers=bearer,
                json={"external_id": f"p{i}", "access_token": access},
            )
        c.get(f"{EA}/messenger/p0", headers=bearer)
        c.patch(f"{EA}/messenger/p0", auth=auth, json={"access_token": "EAAG-patched-s3cr3t"})
        secrets.append("EAAG-patched-s3cr3t")
        c.post(
            f"{EA}/messenger",
            auth=auth,
            content=b'{"access_token": "EAAG-in-bad-json-s3cr3t",',
            headers={"Content-Type": "application/json"},
        )
        secrets.append("EAAG-in-bad-json-s3cr3t")
        c.get(EA, auth=(auth[0], "wrong-secret-s3cr3t"))
        secrets.append("wrong-secret-s3cr3t")
        c.get(EA, headers={"Authorization": f"Bearer {token[:-4]}AAAA"})  # bad signature
        # A 500: a tampered ciphertext (the error path logs an exception).
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            blob = conn.execute(
                select(accounts.c.access_token).where(accounts.c.external_id == "p1")
            ).scalar_one()
            conn.execute(
                accounts.update().where(accounts.c.external_id == "p2").values(access_token=blob)
            )
        engine.dispose()
        assert c.get(f"{EA}/messenger/p2", auth=auth).status_code == 500
    logs = server.output
    assert "GET /beta/chatapp-accounts/messenger/p2" in logs  # the run was logged
    assert "unhandled error" in logs
    for secret in secrets:
        assert secret not in logs, f"a secret reached the logs: {secret[:12]}..."
    for marker in ("Authorization", "Basic ", "Bearer ey", "PRIVATE KEY"):
        assert marker not in logs, marker
