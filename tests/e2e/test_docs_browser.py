"""/docs in a real browser: headless Chromium (Debian's `chromium`, which .ci/run installs)
renders every operation of both served specs from files the server itself serves."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.conftest import IN_CI

from .server import Server, base_env, running_server

pytestmark = pytest.mark.e2e

SPECS = {
    "External Accounts API": "/beta/chatapp-accounts/openapi.json",
    "Application API v2": "/v2/applications/openapi.json",
    "Sandbox API": "/sandbox/v1/openapi.json",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "Chromium is not installed (Debian's `chromium` package; .ci/run installs it)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the browser test must run)")
        pytest.skip(message)
    return found


def rendered(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run and its fetches have been answered."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def operation_anchors(spec: dict[str, object]) -> set[str]:
    """What Swagger UI links each operation as: `#/<first tag>/<operationId>`."""
    anchors = set()
    for item in spec["paths"].values():  # type: ignore[attr-defined]
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                tag = op.get("tags", ["default"])[0]
                anchors.add(f'href="#/{quote(tag)}/{op["operationId"]}"')
    return anchors


def test_docs_render_every_operation_of_both_apis(
    chromium: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/docs.sqlite3")
    with running_server(env) as server:
        page = httpx.get(f"{server.url}/docs")
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name, spec_path in SPECS.items():
            spec = httpx.get(server.url + spec_path).json()
            anchors = operation_anchors(spec)
            assert len(anchors) >= 3
            dom = rendered(chromium, f"{server.url}/docs?urls.primaryName={quote(name)}", tmp_path)
            missing = {a for a in anchors if a not in dom}
            assert not missing, f"{name}: not rendered: {missing}"
            assert spec["info"]["title"] in dom
        assert_only_this_server_was_asked(server)


def assert_only_this_server_was_asked(server: Server) -> None:
    """The page's assets came from the server (logged), and none was missing."""
    log = server.output
    assert "route=/docs/assets/{file} status=200" in log
    assert "route=/docs/init.js status=200" in log
    assert "route=/docs/assets/{file} status=404" not in log
