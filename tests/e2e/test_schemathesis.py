"""The published specs as the test: Schemathesis 4 runs against the live server.

Every check is on (`--checks all`: the twelve the issue names, plus `allow_header_conformance`
and `object_level_authorization`), with all four phases, the stateful one following the links
Schemathesis infers from the spec. Real accounts and applications are seeded, and Schemathesis
is given their ids through dictionaries, so generated requests reach real rows half of the
time. The run is seeded (reproducible in CI); set CHATAPP_SCHEMATHESIS_SEED and
CHATAPP_SCHEMATHESIS_EXAMPLES to explore further.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from chatapp_accounts.api.openapi import (
    APPLICATION_FIXES,
    apply_fixes,
    load_published,
    load_published_application,
)
from chatapp_accounts.config import settings_from_env
from chatapp_accounts.domain.accounts import provision_account
from chatapp_accounts.domain.models import Provider
from chatapp_accounts.security.keys import generate_rsa_key_pair
from chatapp_accounts.security.tokens import load_cipher
from chatapp_accounts.storage.databases import open_database
from chatapp_accounts.storage.engine import make_engine
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import sync

from .conftest import report as report_line
from .server import Server, base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ST = str(Path(sys.executable).parent / "schemathesis")
SEED = os.environ.get("CHATAPP_SCHEMATHESIS_SEED", "1")
EXAMPLES = os.environ.get("CHATAPP_SCHEMATHESIS_EXAMPLES", "40")
SEEDED_IDS = ["12345678", "seed-page"]  # "12345678" is the spec's own example


@dataclass
class Seeded:
    server: Server
    auth: tuple[str, str]
    application_ids: list[str]
    public_keys: list[str]


@pytest.fixture
def seeded(db_env: dict[str, str]) -> Any:
    env = base_env(**db_env)
    mine = new_tenant(env)
    other = new_tenant(env)
    auth = (mine["api_key"], mine["api_secret"])
    with running_server(env) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        apps = []
        for i, caps in enumerate([{"messages": {}}, {"messages": {}}, {"voice": {}}]):
            r = c.post(
                "/v2/applications", json={"name": f"seed{i}", "capabilities": caps}, auth=auth
            )
            apps.append(r.json()["id"])
        for external_id in SEEDED_IDS:
            r = c.post(
                "/beta/chatapp-accounts/messenger",
                json={"external_id": external_id, "access_token": "tok", "applications": [apps[0]]},
                auth=auth,
            )
            assert r.status_code == 201, r.text
        provision(env, mine["api_key"])
        # Another tenant's data, which nothing generated may ever reach.
        c.post(
            "/beta/chatapp-accounts/messenger",
            json={"external_id": "other-tenant-page", "access_token": "theirs"},
            auth=(other["api_key"], other["api_secret"]),
        )
        yield Seeded(server, auth, apps, [generate_rsa_key_pair()[1] for _ in range(2)])


def provision(env: dict[str, str], api_key: str) -> None:
    """The seeded accounts of the providers with no HTTP create, registered by the operator's
    use case (what `accounts provision` runs; tests/e2e/test_cli.py runs the command itself),
    in this process: a command per account would be six process starts per run."""
    settings = settings_from_env(env)
    factory = SqlUnitOfWorkFactory(
        open_database(make_engine(settings.database_url), pool_size=1, pool_timeout=5),
        load_cipher(settings),
    )

    async def register() -> None:
        try:
            for provider in (Provider.VIBER_SERVICE_MSG, Provider.WHATSAPP, Provider.RCS):
                for external_id in SEEDED_IDS:
                    await provision_account(
                        factory, api_key=api_key, provider=provider, external_id=external_id
                    )
        finally:
            await factory.close()

    sync(register())


def _toml_list(values: list[str]) -> str:
    return json.dumps(values)  # a JSON array of strings is a TOML array


def run_schemathesis(seeded: Seeded, spec: Path, base_path: str, tmp_path: Path) -> dict[str, Any]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
# Tuned: the server ignores query parameters it does not know, as most HTTP APIs do (clients
# add cache busters and tracing parameters). Schemathesis' negative mode would add such a
# parameter and count the ignored extra as "invalid data accepted"; this stops only that
# mutation. Every check stays on.
[generation]
allow-extra-parameters = false

[dictionaries.external_ids]
values = {_toml_list(SEEDED_IDS)}
[dictionaries.applications]
values = {_toml_list(seeded.application_ids)}
[dictionaries.public_keys]
values = {_toml_list(seeded.public_keys)}

[parameters]
"path.external_id" = {{ dictionary = "external_ids", probability = 0.5 }}
"path.application_id" = {{ dictionary = "applications", probability = 0.5 }}
"path.id" = {{ dictionary = "applications", probability = 0.5 }}
"body.application" = {{ dictionary = "applications", probability = 0.5 }}
# A public key must be a real RSA key (it verifies the application's JWTs): random strings
# are refused with 400, as Vonage refuses them. Schema-valid bodies get real keys.
"body.keys.public_key" = {{ dictionary = "public_keys", probability = 1.0 }}
"""
    )
    har, report = tmp_path / "requests.har", tmp_path / "report.json"
    result = subprocess.run(
        [
            ST, "--config-file", str(config), "run", str(spec),
            "--url", seeded.server.url + base_path,
            "--auth", ":".join(seeded.auth),
            "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", EXAMPLES,
            "--seed", SEED,
            "--workers", "1",
            "--no-color",
            "--report", "json,har",
            "--report-json-path", str(report),
            "--report-har-path", str(har),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    summary: dict[str, Any] = json.loads(report.read_text())
    requests = len(json.loads(har.read_text())["log"]["entries"])
    summary["requests"] = requests
    cases = summary["test_cases"]
    report_line(
        f"{spec.name} on {seeded.server.url.split('//')[1]}: {requests} requests, "
        f"{cases['generated']} test cases, {cases['unique_failures']} failures (seed {SEED})"
    )
    assert result.returncode == 0, result.stdout[-20000:]
    assert summary["failures"] == [] and summary["errors"] == []
    assert all(p["status"] == "success" for p in summary["phases"].values()), summary["phases"]
    # The seeds were reached: no operation answered only 404s or only 401/403s.
    assert summary["warnings"]["missing_test_data"] == [], summary["warnings"]
    assert summary["warnings"]["missing_auth"] == [], summary["warnings"]
    assert requests > 300
    return summary


def published_external_accounts_spec(tmp_path: Path) -> Path:
    """The published file (the package's verbatim copy), changed only by the fixes
    docs/spec-fixes.md lists (applied here, in the test)."""
    spec = load_published()
    path = tmp_path / "external-accounts.fixed.json"
    path.write_text(json.dumps(apply_fixes(spec)))
    return path


def published_application_spec(tmp_path: Path) -> Path:
    """The published Application API v2 spec with the fixes in docs/spec-fixes.md (its bounds are
    those this server enforces), and one change of the test's own: the example
    `keys.public_key` is a truncated PEM that no server could load, so it is replaced by a real
    RSA public key and the examples phase sends a key Vonage would accept."""
    spec = apply_fixes(load_published_application(), APPLICATION_FIXES)
    _, real_key = generate_rsa_key_pair()
    for path, method in (("/", "post"), ("/{id}", "put")):
        body = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        body["properties"]["keys"]["properties"]["public_key"]["example"] = real_key
    out = tmp_path / "application.fixed.json"
    out.write_text(json.dumps(spec))
    return out


def test_published_external_accounts_spec(seeded: Seeded, tmp_path: Path) -> None:
    run_schemathesis(
        seeded, published_external_accounts_spec(tmp_path), "/beta/chatapp-accounts", tmp_path
    )


def test_served_external_accounts_spec(seeded: Seeded, tmp_path: Path) -> None:
    served = httpx.get(f"{seeded.server.url}/beta/chatapp-accounts/openapi.json").json()
    path = tmp_path / "served.json"
    path.write_text(json.dumps(served))
    run_schemathesis(seeded, path, "/beta/chatapp-accounts", tmp_path)


def test_published_application_spec(seeded: Seeded, tmp_path: Path) -> None:
    run_schemathesis(seeded, published_application_spec(tmp_path), "/v2/applications", tmp_path)
