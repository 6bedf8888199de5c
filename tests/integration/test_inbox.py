"""The web inbox over HTTP, without a browser (tests/e2e/test_inbox_browser.py drives one): signing
in and out, the session cookie, anti-forgery tokens, tenants kept apart, markup never run, the
vendored files, and CHATAPP_INBOX=false. On both databases."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator

import pytest
from markupsafe import escape
from sqlalchemy import Engine
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.api.inbox import ASSETS, STATIC
from chatapp_accounts.config import Settings
from chatapp_accounts.domain.tenants import revoke_tenant
from tests.conftest import TenantCreds, sync

from .helpers import EA, new_application, new_messenger

INBOX = "/inbox"
XSS = '<img src=x onerror=alert(1)><script>alert("x")</script>'


def _login_token(client: TestClient) -> str:
    page = client.get(f"{INBOX}/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, who: TenantCreds) -> str:
    """Signed in: the page's anti-forgery token."""
    token = _login_token(client)
    done = client.post(f"{INBOX}/login", data={"api_key": who.api_key, "api_secret": who.api_secret,
                                               "csrf_token": token}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == INBOX, done.text
    page = client.get(INBOX)
    assert page.status_code == 200, page.text
    found = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
    assert found is not None
    return found.group(1)


def _inbound(client: TestClient, who: TenantCreds, page: str, text: str) -> str:
    r = client.post("/sandbox/v1/inbound", headers=who.headers, json={
        "channel": "messenger", "to": page, "from": "customer-1", "message_type": "text",
        "text": text})  # fmt: skip
    assert r.status_code == 202, r.text
    return str(r.json()["message_uuid"])


def _linked_page(client: TestClient, who: TenantCreds, page: str) -> None:
    app = new_application(client, who)
    new_messenger(client, who, page, applications=[app["id"]])


def _messages(client: TestClient, who: TenantCreds) -> int:
    r = client.get("/sandbox/v1/messages", headers=who.headers)
    return int(r.json()["total_items"])


def test_signing_in_and_out(client: TestClient, alice: TenantCreds) -> None:
    first = client.get(INBOX, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"{INBOX}/login"
    token = _login_token(client)
    login_cookie = client.cookies.get("chatapp_inbox_login")
    assert login_cookie == token

    wrong = client.post(f"{INBOX}/login", data={"api_key": alice.api_key, "api_secret": "nope",
                                                "csrf_token": token})  # fmt: skip
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert "chatapp_inbox=" not in wrong.headers.get("set-cookie", "")
    forged = client.post(f"{INBOX}/login", data={"api_key": alice.api_key,
                                                 "api_secret": alice.api_secret,
                                                 "csrf_token": "guess"})  # fmt: skip
    assert forged.status_code == 403 and "expired" in forged.text
    assert "chatapp_inbox=" not in forged.headers.get("set-cookie", "")

    token = _login_token(client)
    done = client.post(f"{INBOX}/login", follow_redirects=False, data={
        "api_key": alice.api_key, "api_secret": alice.api_secret, "csrf_token": token})  # fmt: skip
    cookie = next(v for k, v in done.headers.multi_items()
                  if k == "set-cookie" and v.startswith("chatapp_inbox="))  # fmt: skip
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/inbox"} <= attributes
    assert "secure" not in attributes  # plain HTTP here; see the HTTPS test
    assert alice.api_secret not in cookie

    page = client.get(INBOX)
    assert page.status_code == 200 and f'<code id="tenant">{alice.api_key}</code>' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"

    csrf = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
    assert csrf is not None
    out = client.post(f"{INBOX}/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == f"{INBOX}/login"
    assert client.get(INBOX, follow_redirects=False).status_code == 303


def test_the_session_cookie_is_secure_under_https(settings: Settings, engine: Engine,
                                                  alice: TenantCreds) -> None:  # fmt: skip
    with TestClient(create_app(settings, engine=engine), base_url="https://testserver") as c:
        token = _login_token(c)
        done = c.post(f"{INBOX}/login", follow_redirects=False, data={
            "api_key": alice.api_key, "api_secret": alice.api_secret, "csrf_token": token})  # fmt: skip
        cookies = [v for k, v in done.headers.multi_items() if k == "set-cookie"]
        session = next(v for v in cookies if v.startswith("chatapp_inbox="))
        assert "secure" in session.lower()


def test_a_post_without_the_anti_forgery_token_changes_nothing(
    client: TestClient, alice: TenantCreds
) -> None:
    _linked_page(client, alice, "page-1")
    token = sign_in(client, alice)
    body = {"channel": "messenger", "to": "page-1", "from": "customer-1",
            "message_type": "text", "text": "hello"}  # fmt: skip
    refused = client.post(f"{INBOX}/compose", data=body)
    assert refused.status_code == 403 and "anti-forgery token" in refused.text
    other_site = client.post(f"{INBOX}/compose", data=body, headers={
        "X-CSRF-Token": token, "Origin": "https://evil.example"})  # fmt: skip
    assert other_site.status_code == 403
    wrong = client.post(f"{INBOX}/compose", data=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert _messages(client, alice) == 0

    sent = client.post(f"{INBOX}/compose", data=body, headers={"X-CSRF-Token": token})
    assert sent.status_code == 200 and "Sent as the customer" in sent.text
    assert sent.headers["hx-trigger"] == "inbox:changed"
    assert _messages(client, alice) == 1


def test_compose_answers_as_the_sandbox_api_does(client: TestClient, alice: TenantCreds) -> None:
    _linked_page(client, alice, "page-1")
    token = sign_in(client, alice)
    body = {"channel": "messenger", "to": "no-such-page", "from": "customer-1",
            "message_type": "text", "text": "hello"}  # fmt: skip
    api = client.post("/sandbox/v1/inbound", json=body, headers=alice.headers)
    shown = client.post(f"{INBOX}/compose", data=body, headers={"X-CSRF-Token": token})
    assert shown.status_code == api.status_code == 422
    assert str(escape(api.json()["title"])) in shown.text
    assert str(escape(api.json()["detail"])) in shown.text
    where = {"channel": "messenger", "to": "page-1", "from": "customer-1"}
    bad = client.post(f"{INBOX}/compose", headers={"X-CSRF-Token": token}, data={
        **where, "message_type": "location", "lat": "north", "long": "1"})  # fmt: skip
    api_bad = client.post("/sandbox/v1/inbound", headers=alice.headers, json={
        **where, "message_type": "location", "location": {"lat": "north", "long": 1.0}})  # fmt: skip
    assert bad.status_code == api_bad.status_code == 422, api_bad.text
    assert str(escape(api_bad.json()["title"])) in bad.text
    for param in api_bad.json()["invalid_parameters"]:
        assert str(escape(param["reason"])) in bad.text
    assert _messages(client, alice) == 0


def test_tenants_see_only_their_own(client: TestClient, alice: TenantCreds,
                                    bob: TenantCreds) -> None:  # fmt: skip
    _linked_page(client, alice, "alice-page")
    uuid = _inbound(client, alice, "alice-page", "for alice only")
    sign_in(client, bob)
    page = client.get(INBOX)
    assert "alice-page" not in page.text and "for alice only" not in page.text
    one = client.get(f"{INBOX}/messages/{uuid}")
    assert one.status_code == 404 and "Not Found" in one.text and "for alice" not in one.text
    hooks = client.get("/sandbox/v1/messages", headers=alice.headers).json()
    webhook_id = hooks["_embedded"]["messages"][0]["webhooks"][0]["id"]
    assert client.get(f"{INBOX}/webhooks/{webhook_id}").status_code == 404
    searched = client.get(f"{INBOX}/messages", params={"q": "account:alice-page"})
    assert searched.status_code == 200 and uuid not in searched.text

    client.cookies.clear()
    sign_in(client, alice)
    mine = client.get(f"{INBOX}/messages/{uuid}")
    assert mine.status_code == 200 and "for alice only" in mine.text
    latest = client.get(f"{INBOX}/messages/latest")
    assert uuid in latest.text


def test_a_revoked_tenant_is_signed_out(client: TestClient, alice: TenantCreds,
                                        uow_factory: object) -> None:  # fmt: skip
    sign_in(client, alice)
    sync(revoke_tenant(uow_factory, alice.api_key))  # type: ignore[arg-type]
    assert client.get(INBOX, follow_redirects=False).headers["location"] == f"{INBOX}/login"
    fragment = client.get(f"{INBOX}/sidebar", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == f"{INBOX}/login"


def test_text_names_and_payloads_are_data_never_markup(
    client: TestClient, alice: TenantCreds
) -> None:
    app = new_application(client, alice)
    new_messenger(client, alice, "page-x", applications=[app["id"]], name=XSS)
    uuid = _inbound(client, alice, "page-x", XSS)
    sign_in(client, alice)
    for url in (INBOX, f"{INBOX}/messages/{uuid}", f"{INBOX}/sidebar", f"{INBOX}/messages"):
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    hooks = client.get("/sandbox/v1/messages", headers=alice.headers).json()
    webhook_id = hooks["_embedded"]["messages"][0]["webhooks"][0]["id"]
    html = client.get(f"{INBOX}/webhooks/{webhook_id}").text
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_vendored_files_are_served_as_pinned(client: TestClient) -> None:
    for name, digest in ASSETS.items():
        served = client.get(f"{INBOX}/static/{name}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/javascript")
        assert hashlib.sha256(served.content).hexdigest() == digest
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest
    css = client.get(f"{INBOX}/static/inbox.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    missing = client.get(f"{INBOX}/static/../../config.py")
    assert missing.status_code == 404
    assert client.get(f"{INBOX}/static/nothing.js").status_code == 404


@pytest.fixture
def no_inbox(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    off = dataclasses.replace(settings, inbox=False)
    with TestClient(create_app(off, engine=engine), raise_server_exceptions=False) as c:
        yield c


def test_chatapp_inbox_false_turns_it_off(no_inbox: TestClient) -> None:
    for url in (INBOX, f"{INBOX}/login", f"{INBOX}/static/inbox.css"):
        r = no_inbox.get(url)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"


def test_the_page_links_nothing_from_another_host(client: TestClient, alice: TenantCreds) -> None:
    sign_in(client, alice)
    html = client.get(INBOX).text + client.get(f"{INBOX}/login").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/inbox", "#", "data:")) for s in sources), sources
    assert EA not in html
