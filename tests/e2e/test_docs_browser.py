"""/docs in a real browser: headless Chromium (Debian's `chromium`, which .ci/run installs)
renders every operation of the served specs from files the server itself serves, one section a
tag, none empty."""

from __future__ import annotations

import re
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
    "Messages API v1": "/v1/messages/openapi.json",
    "Sandbox API": "/sandbox/v1/openapi.json",
    "Admin API": "/admin/v1/openapi.json",
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


_SECTION = '<div class="opblock-tag-section'
_TAG = re.compile(r'<h3 class="opblock-tag[^"]*"[^>]* data-tag="([^"]*)"')
_OPERATION = re.compile(r'<div class="opblock opblock-[a-z]+[^"]*" id="operations-')


def sections(dom: str) -> dict[str, int]:
    """Swagger UI's operation sections, in order: tag shown -> operations under it."""
    found: dict[str, int] = {}
    for chunk in dom.split(_SECTION)[1:]:
        tag = _TAG.search(chunk)
        assert tag is not None, chunk[:300]
        assert tag.group(1) not in found, f"section {tag.group(1)!r} twice"
        found[tag.group(1)] = len(_OPERATION.findall(chunk))
    return found


def test_sections_reads_an_empty_section() -> None:
    """The reader of the page finds what the issue saw (an empty "Whatsapp" section)."""
    head = '<h3 class="opblock-tag" id="operations-tag-{0}" data-tag="{0}" data-is-open="true">'
    op = '<div class="opblock opblock-get" id="operations-WhatsApp-GetWAAccount">'
    dom = f'{_SECTION} is-open">{head.format("Whatsapp")}</h3></div>'
    dom += f'{_SECTION} is-open">{head.format("WhatsApp")}</h3>{op}</div></div>'
    assert sections(dom) == {"Whatsapp": 0, "WhatsApp": 1}


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
            assert len(anchors) >= 2  # the Messages API has two operations
            dom = rendered(chromium, f"{server.url}/docs?urls.primaryName={quote(name)}", tmp_path)
            missing = {a for a in anchors if a not in dom}
            assert not missing, f"{name}: not rendered: {missing}"
            assert spec["info"]["title"] in dom
            shown = sections(dom)
            assert shown, f"{name}: no section rendered"
            assert not [t for t, n in shown.items() if n == 0], f"{name}: empty sections {shown}"
            folded = [t.casefold() for t in shown]
            assert len(folded) == len(set(folded)), f"{name}: sections differ in case: {shown}"
            if name == "External Accounts API":
                assert [t for t in shown if t.casefold() == "whatsapp"] == ["WhatsApp"]
                assert dom.count('data-tag="WhatsApp"') == 1
            if name == "Messages API v1":  # the channels it refuses are said to be refused
                assert "Not served by this server" in dom
        assert_only_this_server_was_asked(server)


def assert_only_this_server_was_asked(server: Server) -> None:
    """The page's assets came from the server (logged), and none was missing."""
    log = server.output
    assert "route=/docs/assets/{file} status=200" in log
    assert "route=/docs/init.js status=200" in log
    assert "route=/docs/assets/{file} status=404" not in log
