"""The web inbox in Debian's Chromium (Selenium through its chromedriver, headless), as a person
uses it: sign in, watch a message the API just sent arrive without a reload, compose as the
customer and see the application's receiver get it, open a webhook's attempt and see its
signature verified, redeliver it, flip a fault switch and see the next send fail, search, move
with the keyboard, sign out. Markup in messages runs nothing. Every wait is for an element,
never for "network idle" (the event stream never idles).

`make screenshot` runs the tour with CHATAPP_SCREENSHOT set: it saves the inbox's picture
there (docs/inbox.png, shown in the README)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import IN_CI

from .browser import chromium, click, missing, sign_in, text_of, wait, wait_until
from .messaging import (
    FAST_RETRIES,
    RECIPIENT,
    SENDERS,
    Setup,
    World,
    check_webhook,
    messaging_world,
)
from .server import base_env

pytestmark = pytest.mark.e2e
XSS_IMG = "<img src=x onerror=window.pwned=1>"
XSS_SCRIPT = "<script>window.pwned=2</script>"
WA = SENDERS["whatsapp"]
THREAD = f'#sidebar .account[data-account="{WA}"] a.thread[data-peer="{RECIPIENT["whatsapp"]}"]'


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    why = missing()
    if why is not None:
        if IN_CI:
            pytest.fail(why + " (CI=true: the browser tests must run)")
        pytest.skip(why)
    with chromium() as driver:
        yield driver


@pytest.fixture
def world(tmp_path: Any) -> Iterator[World]:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/inbox.sqlite3", **FAST_RETRIES)
    with messaging_world(env) as made:
        yield made


def _send(setup: Setup, text: str, to: str | None = None) -> str:
    body = {"channel": "whatsapp", "message_type": "text", "to": to or RECIPIENT["whatsapp"],
            "from": WA, "text": text}  # fmt: skip
    sent = setup.client.post("/v1/messages", json=body)
    assert sent.status_code == 202, sent.text
    return str(sent.json()["message_uuid"])


def _row(uuid: str) -> str:
    return f'#messages .msg[data-uuid="{uuid}"]'


def _no_alert(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 - the property raises when there is none
    assert driver.execute_script("return window.pwned === undefined") is True


def test_the_inbox_as_a_person_uses_it(browser: WebDriver, world: Any) -> None:
    server, setup, hooks, _ = world
    d = browser
    d.delete_all_cookies()
    sign_in(d, server.url, setup.creds["api_key"], setup.creds["api_secret"])
    assert text_of(d, "#tenant") == setup.creds["api_key"]
    assert d.find_element(By.ID, "live").text == "live"

    # A message the API sends appears without a reload, then its statuses.
    marker = d.execute_script("window.kept = 'same page'; return window.kept")
    uuid = _send(setup, "Hello from the application")
    click(d, _row(uuid))
    wait_until(d, lambda drv: "delivered" in text_of(drv, "#timeline"))
    assert "submitted" in text_of(d, "#timeline")
    assert d.execute_script("return window.kept") == marker  # no reload happened

    # Compose as the customer in the conversation: the application's receiver gets it.
    click(d, THREAD)  # the live sidebar may be replaced between finding and clicking
    compose = wait(d, "#messages form.compose .compose-text")
    compose.send_keys("Hi, this is the customer")
    click(d, "#messages form.compose button[type=submit]")
    wait_until(d, lambda drv: "Sent as the customer" in text_of(drv, "#notice"))
    seen = hooks.wait_for(
        lambda h: any(x.json.get("text") == "Hi, this is the customer" for x in h)
    )
    inbound = next(x for x in seen if x.json.get("text") == "Hi, this is the customer")
    assert inbound.path == "/inbound"
    check_webhook(
        inbound, setup.creds["signature_secret"], setup.creds["api_key"], setup.application_id
    )
    wait_until(d, lambda drv: "Hi, this is the customer" in text_of(drv, "#messages .chat"))

    # Open the outbound message's delivered webhook: the signature panel says it verifies.
    click(d, _row(uuid))
    wait_until(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#message .webhooks a")) >= 2)
    click(d, "#message .webhooks li:nth-child(2) a")
    panel = wait(d, ".webhook-detail .signature")
    assert panel.get_attribute("data-verified") == "true"
    assert setup.application_id in text_of(d, ".webhook-detail .claims")
    assert "matches" in text_of(d, ".webhook-detail .signature")
    assert "…(masked)" in text_of(d, ".webhook-detail .curl")
    tokens = [h.headers["Authorization"].split()[1] for h in hooks.hooks]
    assert tokens and not any(t in d.page_source for t in tokens)  # the tokens never shown

    # Redeliver: the receiver gets the same body again.
    body = d.find_element(By.ID, "webhook-body").text
    count = len(hooks.hooks)
    click(d, "#redeliver")
    wait_until(d, lambda drv: "pending again" in text_of(drv, "#notice"))
    again = hooks.wait_for(lambda h: len(h) > count)
    assert any(x.json.get("message_uuid") == uuid and x.json.get("status") == "delivered"
               for x in again[count:])  # fmt: skip
    assert '"status": "delivered"' in body

    # A fault switch: the next send from the account fails, and the inbox shows why.
    click(d, f'#sidebar .account[data-account="{WA}"] .faults-link')
    wait(d, "#faults #fault-fail")
    click(d, '#fault-fail option[value="rejected"]')
    click(d, "#fault-save")
    wait_until(d, lambda drv: text_of(drv, "#fault-now") == "rejected")
    failing = _send(setup, "this one fails")
    hooks.wait_for(lambda _: "rejected" in hooks.statuses(failing))
    click(d, _row(failing))
    wait_until(d, lambda drv: "rejected" in text_of(drv, "#timeline"))
    assert "1282" in text_of(d, "#timeline")
    with httpx.Client(
        base_url=server.url, auth=(setup.creds["api_key"], setup.creds["api_secret"])
    ) as api:
        shown = api.get(f"/sandbox/v1/accounts/whatsapp/{WA}/faults").json()
        assert shown == {"delay": 0.0, "fail": "rejected"}
        api.put(f"/sandbox/v1/accounts/whatsapp/{WA}/faults", json={})

    # Search with operators, and `latest`.
    other = _send(setup, "to another customer", to="447700900555")
    search = d.find_element(By.ID, "search")
    search.clear()
    search.send_keys("to:447700900555", Keys.ENTER)
    wait(d, _row(other))
    wait_until(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#messages .msg")) == 1)
    assert "Search" in text_of(d, "#messages h2")

    # The keyboard: / searches, j moves, Enter opens.
    # Keys go to whatever has the focus (ActionChains): a row the live list replaced meanwhile
    # loses its mark, and the keys are pressed again.
    click(d, "header.top strong")
    ActionChains(d).send_keys("/").perform()
    assert d.switch_to.active_element.get_attribute("id") == "search"
    ActionChains(d).send_keys(Keys.ESCAPE).perform()

    def opened_with_keys(drv: WebDriver) -> bool:
        ActionChains(drv).send_keys("j").send_keys(Keys.ENTER).perform()
        found = drv.find_elements(By.ID, "message")
        return bool(found) and found[0].get_attribute("data-uuid") == other

    wait_until(d, opened_with_keys)

    # Markup in a message, sent or received, is shown as text and runs nothing.
    _send(setup, XSS_IMG)
    setup.client.post("/sandbox/v1/inbound", json={"channel": "whatsapp", "to": WA,
                      "from": RECIPIENT["whatsapp"], "message_type": "text", "text": XSS_SCRIPT})  # fmt: skip
    click(d, THREAD)
    wait_until(d, lambda drv: XSS_SCRIPT in text_of(drv, "#messages .chat"))
    assert XSS_IMG in text_of(d, "#messages .chat")
    assert not d.find_elements(By.CSS_SELECTOR, "#messages .content img, #messages .content script")
    _no_alert(d)

    if os.environ.get("CHATAPP_SCREENSHOT"):
        click(d, _row(uuid))
        click(d, "#message .webhooks li:nth-child(2) a")
        wait(d, ".webhook-detail .signature")
        d.execute_script("document.querySelector('.webhook-detail .signature').scrollIntoView()")
        d.save_screenshot(os.environ["CHATAPP_SCREENSHOT"])

    # Sign out: back to the form; the inbox asks to sign in again.
    click(d, "#sign-out")
    wait(d, "#login-form")
    d.get(server.url + "/inbox")
    wait(d, "#login-form")


def test_a_post_without_the_anti_forgery_token_is_refused(browser: WebDriver, world: Any) -> None:
    server, setup, hooks, _ = world
    d = browser
    d.delete_all_cookies()
    sign_in(d, server.url, setup.creds["api_key"], setup.creds["api_secret"])
    cookie = {c["name"]: c["value"] for c in d.get_cookies()}["chatapp_inbox"]
    body = {"channel": "whatsapp", "to": WA, "from": RECIPIENT["whatsapp"],
            "message_type": "text", "text": "forged"}  # fmt: skip
    with httpx.Client(base_url=server.url, cookies={"chatapp_inbox": cookie}) as forger:
        refused = forger.post("/inbox/compose", data=body)
        assert refused.status_code == 403 and "anti-forgery token" in refused.text
    # The page itself, from the browser, fetching without the token: refused as well.
    status = d.execute_script(
        "return fetch('/inbox/compose', {method: 'POST', body: new URLSearchParams(arguments[0])})"
        ".then(r => r.status)",
        body,
    )
    assert status == 403
    listed = setup.client.get("/sandbox/v1/messages", params={"q": "forged"}).json()
    assert listed["total_items"] == 0
    assert not any(h.json.get("text") == "forged" for h in hooks.hooks)
