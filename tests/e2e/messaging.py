"""What the message tests share: a webhook receiver (a real HTTP server in the test process),
a tenant with an application whose webhooks point at it and linked accounts of every channel,
and the checks every webhook must pass: its body valid against the Messages spec's
`x-webhooks` schema for its channel, its signature accepted by Vonage's own `vonage_jwt`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema_rs
import jwt as pyjwt
import yaml
from vonage_jwt import verify_signature

from chatapp_accounts.api.message_bodies import mend_null_properties
from chatapp_accounts.api.openapi import fix_status_enums

from .server import Server, cli, new_tenant, running_server

SPEC = Path(__file__).parents[2] / "src/chatapp_accounts/api/spec/messages.v1.20.0.yaml"
TITLES = {"messenger": "Messenger", "whatsapp": "WhatsApp", "viber_service": "Viber", "rcs": "RCS"}
PROVIDER = {"messenger": "messenger", "whatsapp": "whatsapp", "viber_service": "viber_service_msg",
            "rcs": "rcs"}  # fmt: skip
# An account of each channel, and a recipient its `to` schema takes.
SENDERS = {"messenger": "page-1", "whatsapp": "447700900000", "viber_service": "viber-1",
           "rcs": "agent-1"}  # fmt: skip
RECIPIENT = {"messenger": "user-1", "whatsapp": "447700900123", "viber_service": "447700900123",
             "rcs": "447700900123"}  # fmt: skip


@cache
def _spec() -> dict[str, Any]:
    spec = mend_null_properties(yaml.safe_load(SPEC.read_text()))
    fix_status_enums(spec)  # the defect docs/messages.md names: status enums are a union
    return spec  # type: ignore[no-any-return]


@cache
def status_validator(channel: str) -> Any:
    name = {"messenger": "messageStatusMessenger", "whatsapp": "messageStatusWhatsApp",
            "viber_service": "messageStatusViber", "rcs": "messageStatusRCS"}[channel]  # fmt: skip
    spec = _spec()
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    )


@cache
def inbound_validator(channel: str) -> Any:
    spec = _spec()
    post = spec["x-webhooks"]["inbound-message"]["{$request.body#/callback}"]["post"]
    groups = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    group = next(g for g in groups if g.get("title") == TITLES[channel])
    return jsonschema_rs.validator_for({**group, "components": spec["components"]})


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    """Records every request; `answer(path, n)` (n: how many that path has had) gives the status."""

    url: str
    hooks: list[Hook] = field(default_factory=list)
    answer: Callable[[str, int], int] = lambda path, n: 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Callable[[list[Hook]], bool], timeout: float = 20) -> list[Hook]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = list(self.hooks)
            if predicate(seen):
                return seen
            time.sleep(0.05)
        raise AssertionError(f"timed out; received {[h.json for h in seen]}")

    def statuses(self, message_uuid: str) -> list[str]:
        with self.lock:
            return [h.json["status"] for h in self.hooks if h.json.get("message_uuid") == message_uuid
                    and h.path == "/status"]  # fmt: skip


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    counts: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                counts[self.path] = counts.get(self.path, 0) + 1
                status = state.answer(self.path, counts[self.path])
                if status < 300:
                    state.hooks.append(Hook(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as url:
        state.url = url
        yield state


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port, serving `handler`: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check_webhook(hook: Hook, secret: str, api_key: str, application_id: str) -> dict[str, Any]:
    """The body valid for its channel, the signature Vonage's way, the claims this tenant's."""
    body = hook.json
    channel = body["channel"]
    validator = status_validator(channel) if hook.path == "/status" else inbound_validator(channel)
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, (body, errors)
    assert hook.headers["Content-Type"] == "application/json"
    scheme, _, token = hook.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    assert verify_signature(token, secret)
    claims = pyjwt.decode(token, secret, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(hook.body).hexdigest()
    assert claims["iss"] == "Vonage" and claims["jti"]
    assert claims["api_key"] == api_key and claims["application_id"] == application_id
    assert b"access_token" not in hook.body and b"tok-" not in hook.body
    return body


@dataclass
class Setup:
    creds: dict[str, str]
    application: dict[str, Any]
    client: httpx.Client

    @property
    def application_id(self) -> str:
        return str(self.application["id"])


def messaging_setup(
    server: Server, env: dict[str, str], creds: dict[str, str], hooks: str, **client: Any
) -> Setup:
    """An application whose webhooks go to `hooks`, and an account of every channel linked to
    it. `client`: httpx.Client's options (base_url, verify) where the server is not plain HTTP."""
    options = {"base_url": server.url, "timeout": 30, **client}
    http = httpx.Client(auth=(creds["api_key"], creds["api_secret"]), **options)
    webhooks = {"inbound_url": {"address": hooks + "/inbound", "http_method": "POST"},
                "status_url": {"address": hooks + "/status", "http_method": "POST"}}  # fmt: skip
    made = http.post(
        "/v2/applications",
        json={"name": "msgs", "capabilities": {"messages": {"webhooks": webhooks}}},
    )
    assert made.status_code == 201, made.text
    application = made.json()
    ea = "/beta/chatapp-accounts"
    page = http.post(f"{ea}/messenger", json={"external_id": SENDERS["messenger"],
                                                "access_token": "tok-secret"})  # fmt: skip
    assert page.status_code == 201, page.text
    for channel in ("whatsapp", "viber_service", "rcs"):
        done = cli("accounts", "provision", PROVIDER[channel], SENDERS[channel],
                   "--api-key", creds["api_key"], env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
    for channel, sender in SENDERS.items():
        linked = http.post(f"{ea}/{PROVIDER[channel]}/{sender}/applications",
                             json={"application": application["id"]})  # fmt: skip
        assert linked.status_code == 200, linked.text
    return Setup(creds, application, http)


def text(channel: str, to: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "message_type": "text", "to": to or RECIPIENT[channel],
            "from": SENDERS[channel], "text": f"hello on {channel}", **extra}  # fmt: skip


FAST_RETRIES = {
    "CHATAPP_WEBHOOK_RETRY_FIRST_SECONDS": "0.2",
    "CHATAPP_WEBHOOK_RETRY_MAX_INTERVAL_SECONDS": "0.5",
    "CHATAPP_WEBHOOK_TIMEOUT_SECONDS": "2",
}
World = tuple[Server, Setup, "Receiver", dict[str, str]]


@contextmanager
def messaging_world(env: dict[str, str]) -> Iterator[World]:
    """A server on `env`'s database, a tenant, a receiver, and messaging_setup's application
    and accounts: (server, setup, receiver, env)."""
    creds = new_tenant(env)
    with receiver() as hooks, running_server(env) as server:
        yield server, messaging_setup(server, env, creds, hooks.url), hooks, env
