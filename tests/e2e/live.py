"""What the live-channel tests share: the loopback fakes of Meta and RBM (chatapp_accounts.fakes)
each on an event loop of its own in a thread, a server in live mode pointed at them, and a
tenant whose application's webhooks go to a receiver, with a live WhatsApp number, a Messenger
page and an RCS agent linked to it."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import jwt as pyjwt

from chatapp_accounts.fakes.meta import MetaFake
from chatapp_accounts.fakes.rbm import RbmFake

from .server import EXE, Server, cli, free_port

T = TypeVar("T")

VERIFY_TOKEN = "verify-me"
PAGE_TOKEN = "EAAB-page-token-secret"
WA_TOKEN = "EAAB-whatsapp-token-secret"
NUMBER, PHONE_NUMBER_ID, WABA = "447700900000", "pn-100", "waba-100"
PAGE, AGENT, VIBER = "page-1", "agent-1", "viber-1"


class OnItsLoop:
    """A fake serving on an event loop of its own, in a daemon thread."""

    def __init__(self, fake: MetaFake | RbmFake) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = free_port()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.run(self.fake.start("127.0.0.1", self.port))

    def stop(self) -> None:
        self.run(self.fake.stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextmanager
def fakes(
    tmp: Path, callback_ssl: ssl.SSLContext | None = None
) -> Iterator[tuple[OnItsLoop, OnItsLoop, dict[str, str]]]:
    """Both fakes, started, and the settings that point a server at them. `callback_ssl`:
    whom their callbacks trust, for a server on HTTPS with a test certificate."""
    meta = OnItsLoop(MetaFake(callback_ssl=callback_ssl))
    rbm = OnItsLoop(RbmFake(callback_ssl=callback_ssl))
    meta.start()
    rbm.start()
    key = tmp / "service-account.json"
    meta.fake.set_number(PHONE_NUMBER_ID, waba_id=WABA, display_phone_number=NUMBER)
    assert isinstance(rbm.fake, RbmFake)
    rbm.fake.write_service_account(key)
    env = {
        "CHATAPP_WHATSAPP_MODE": "live", "CHATAPP_MESSENGER_MODE": "live",
        "CHATAPP_RCS_MODE": "live",
        "CHATAPP_META_GRAPH_URL": f"http://127.0.0.1:{meta.port}/v21.0",
        "CHATAPP_META_APP_SECRET": "fake-app-secret", "CHATAPP_META_VERIFY_TOKEN": VERIFY_TOKEN,
        "CHATAPP_RBM_URL": f"http://127.0.0.1:{rbm.port}",
        "CHATAPP_RBM_TOKEN_URL": f"http://127.0.0.1:{rbm.port}/token",
        "CHATAPP_RBM_SERVICE_ACCOUNT_FILE": str(key),
        "CHATAPP_RBM_CLIENT_TOKEN": "fake-client-token",
        "CHATAPP_PROVIDER_RETRY_FIRST_SECONDS": "0.05", "CHATAPP_PROVIDER_RETRY_MAX_SECONDS": "0.2",
        "CHATAPP_PROVIDER_RETRY_HORIZON_SECONDS": "2", "CHATAPP_PROVIDER_TIMEOUT_SECONDS": "2",
        "CHATAPP_SEND_LEASE_SECONDS": "3",
        "CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS": "0.05",
    }  # fmt: skip
    try:
        yield meta, rbm, env
    finally:
        meta.close()
        rbm.close()


def point_callbacks(meta: OnItsLoop, rbm: OnItsLoop, server: Server, base: str = "") -> None:
    base = base or server.url
    meta.fake.callback_url = base + "/providers/meta/webhook"
    rbm.fake.callback_url = base + "/providers/rbm/webhook"


@dataclass
class Live:
    creds: dict[str, str]
    application_id: str
    client: httpx.Client
    private_key: str

    def bearer(self) -> dict[str, str]:
        """The application's own JWT (PATCH /v1/messages takes no other)."""
        now = int(time.time())
        claims = {"application_id": self.application_id, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}  # fmt: skip
        return {"Authorization": "Bearer " + pyjwt.encode(claims, self.private_key, "RS256")}


def provision_whatsapp(env: dict[str, str], api_key: str, token: str = WA_TOKEN) -> None:
    """A live number, its token given on standard input (out of shell history)."""
    done = subprocess.run(
        [EXE, "accounts", "provision", "whatsapp", NUMBER, "--api-key", api_key,
         "--phone-number-id", PHONE_NUMBER_ID, "--waba-id", WABA, "--access-token-file", "-"],
        input=token + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def live_setup(
    server: Server, env: dict[str, str], creds: dict[str, str], hooks: str, **client: Any
) -> Live:
    """`client`: httpx.Client's options (base_url, verify) where the server is not plain HTTP."""
    options = {"base_url": server.url, "timeout": 30, **client}
    http = httpx.Client(auth=(creds["api_key"], creds["api_secret"]), **options)
    webhooks = {"inbound_url": {"address": hooks + "/inbound", "http_method": "POST"},
                "status_url": {"address": hooks + "/status", "http_method": "POST"}}  # fmt: skip
    made = http.post("/v2/applications", json={
        "name": "live", "capabilities": {"messages": {"webhooks": webhooks}}})  # fmt: skip
    assert made.status_code == 201, made.text
    app, private_key = made.json()["id"], made.json()["keys"]["private_key"]
    ea = "/beta/chatapp-accounts"
    page = http.post(f"{ea}/messenger", json={"external_id": PAGE, "access_token": PAGE_TOKEN})
    assert page.status_code == 201, page.text
    provision_whatsapp(env, creds["api_key"])
    for provider, sender in (("rcs", AGENT), ("viber_service_msg", VIBER)):  # RCS live, Viber not
        done = cli("accounts", "provision", provider, sender, "--api-key", creds["api_key"],
                   env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
    for provider, sender in (("messenger", PAGE), ("whatsapp", NUMBER), ("rcs", AGENT),
                             ("viber_service_msg", VIBER)):  # fmt: skip
        linked = http.post(f"{ea}/{provider}/{sender}/applications", json={"application": app})
        assert linked.status_code == 200, linked.text
    return Live(creds, app, http, private_key)


def text(channel: str, to: str, **content: Any) -> dict[str, Any]:
    sender = {"whatsapp": NUMBER, "messenger": PAGE, "rcs": AGENT, "viber_service": VIBER}[channel]
    return {"channel": channel, "to": to, "from": sender, "message_type": "text",
            "text": f"hello on {channel}", **content}  # fmt: skip


def send(live: Live, channel: str, to: str, **content: Any) -> str:
    answer = live.client.post("/v1/messages", json=text(channel, to, **content))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["message_uuid"])
