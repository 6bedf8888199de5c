"""A channel that raises an unexpected exception (a provider module's bug, a library's surprise)
fails its message only, on both databases, through the real server and sender: the message ends
`undeliverable` with code 1331 and its status webhook says so, the log names the exception's type
but holds nothing of its text (which may quote a secret), and the sender goes on with the next
message, which is delivered."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.channels import ChannelRegistry
from chatapp_accounts.channels.sandbox import SandboxChannel
from chatapp_accounts.config import Settings
from chatapp_accounts.domain.providers import SendTry, Taken
from tests.conftest import TenantCreds
from tests.e2e.messaging import Receiver, receiver

from .helpers import new_messenger

SECRET = "EAAB-provider-secret-in-the-exception"
BROKEN = "user-broken"


class Breaks(RuntimeError):
    pass


class BreaksForOneRecipient(SandboxChannel):
    """The sandbox, but for one recipient: then it raises, quoting a secret."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    async def submit(self, send: SendTry) -> Taken:
        self.tried.append(send.job.message.to)
        if send.job.message.to == BROKEN:
            raise Breaks(f"graph said no to token {SECRET}")
        return await super().submit(send)


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def test_a_channel_that_raises_fails_its_message_only(
    settings: Settings, engine: Any, alice: TenantCreds, hooks: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    channel = BreaksForOneRecipient()
    registry = ChannelRegistry({"messenger": channel}, SandboxChannel())
    app = create_app(settings.with_(access_log=False), engine=engine, channels=registry)
    caplog.set_level(logging.INFO)
    with TestClient(app, raise_server_exceptions=False) as client:
        webhooks = {"status_url": {"address": hooks.url + "/status", "http_method": "POST"},
                    "inbound_url": {"address": hooks.url + "/inbound", "http_method": "POST"}}  # fmt: skip
        made = client.post("/v2/applications", headers=alice.headers, json={
            "name": "app", "capabilities": {"messages": {"webhooks": webhooks}}})  # fmt: skip
        assert made.status_code == 201, made.text
        new_messenger(client, alice, "page-1")
        linked = client.post(
            "/beta/chatapp-accounts/messenger/page-1/applications",
            json={"application": made.json()["id"]}, headers=alice.headers,
        )  # fmt: skip
        assert linked.status_code == 200, linked.text

        def send(to: str) -> str:
            sent = client.post("/v1/messages", headers=alice.headers, json={
                "channel": "messenger", "message_type": "text", "to": to, "from": "page-1",
                "text": "hi"})  # fmt: skip
            assert sent.status_code == 202, sent.text
            return str(sent.json()["message_uuid"])

        broken = send(BROKEN)
        fine = send("user-1")
        hooks.wait_for(lambda seen: "delivered" in hooks.statuses(fine)
                       and bool(hooks.statuses(broken)))  # fmt: skip
        listed = client.get("/sandbox/v1/messages", headers=alice.headers)
    assert hooks.statuses(broken) == ["undeliverable"]
    assert hooks.statuses(fine) == ["submitted", "delivered"]
    assert channel.tried.count(BROKEN) == 1 and "user-1" in channel.tried  # no retry of a bug
    (failed,) = [h.json for h in hooks.hooks if h.json["message_uuid"] == broken]
    assert failed["error"]["type"].endswith("1331"), failed
    assert SECRET not in json.dumps(failed)
    stored = {m["message_uuid"]: m for m in listed.json()["_embedded"]["messages"]}
    assert stored[broken]["status"] == "undeliverable"
    assert stored[fine]["status"] == "delivered"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("raised Breaks" in r.getMessage() and broken in r.getMessage() for r in errors)
    everything = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert SECRET not in everything and "graph said no" not in everything
