"""The hand-over on in-memory fakes (tests/unit/fakes.py): a send stores its message and send
job and nothing else; a sender (delivery/sender.py, on the same fakes) hands it to the channel
and records what the channel said; failover, revoke, back-pressure and a broken or silent
channel. No SQL, no HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatapp_accounts.channels.sandbox import SandboxChannel
from chatapp_accounts.delivery.sender import Sender
from chatapp_accounts.domain import accounts, messages
from chatapp_accounts.domain.errors import InvalidSender, NotAuthenticated, Throttled
from chatapp_accounts.domain.models import (
    BasicCredentials,
    BearerCredentials,
    OutboundMessage,
    Provider,
    StatusChange,
)
from chatapp_accounts.domain.ports import Channel
from chatapp_accounts.domain.providers import SendTry, Taken
from chatapp_accounts.domain.webhooks import RetryPolicy

from .fakes import FakeUnitOfWorkFactory
from .test_use_cases import World

STATUS_URL = "https://app.example/status"
CAPS = {"messages": {"webhooks": {"status_url": {"address": STATUS_URL, "http_method": "POST"},
                                  "inbound_url": {"address": "https://app.example/in"}}}}  # fmt: skip


class Load:
    def __init__(self) -> None:
        self.wait: float | None = None

    def refuse(self) -> float | None:
        return self.wait


class FakeChannel(SandboxChannel):
    """Answers as told by the recipient: `fail` -> rejected, `boom` -> raises, `slow` -> never
    answers; anything else submitted then delivered."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    async def submit(self, send: SendTry) -> Taken:
        message, message_uuid = send.job.message, send.job.message_uuid
        self.submitted.append((message.to, message_uuid))
        if message.to == "boom":
            raise RuntimeError("secret-token-in-the-message")
        if message.to == "slow":
            await asyncio.sleep(3600)
        if message.to == "fail":
            return Taken([StatusChange("rejected", 1.0, {"type": "x#1282", "title": "1282"})])
        return Taken([StatusChange("submitted", 1.0), StatusChange("delivered", 1.0)])


class Channels:
    """One channel for every message channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def get(self, channel: str) -> Channel:
        return self.channel

    async def close(self) -> None:
        pass


def _message(to: str = "447700900123", **extra: Any) -> OutboundMessage:
    return OutboundMessage("messenger", "text", to, "page-1", {"text": "hi"}, **extra)


@pytest.fixture
def world() -> tuple[World, BasicCredentials, str]:
    world = World()
    alice = world.tenant()
    app = world.app(alice, CAPS)
    world.page(alice, "page-1", app)
    return world, alice, app


def _send(world: World, who: Any, batch: list[OutboundMessage], load: Load | None = None) -> Any:
    return world.run(messages.send_message, who, lambda: batch, load or Load())


def _run_sender(uow: FakeUnitOfWorkFactory, channel: Channel, **options: Any) -> None:
    """One sender over the fakes until no job is due and no try is running."""
    settings = {"timeout": 5.0, "lease": 30.0, "concurrency": 8, **options}
    policy = settings.pop("policy", RetryPolicy(0.01, 0.02, 60))

    async def go() -> None:
        sender = Sender(uow, Channels(channel), policy, **settings)
        sender.start()
        for _ in range(400):
            await asyncio.sleep(0.01)
            due, _ = await messages.send_backlog(uow, 1e12)
            if not due and not sender._tries and not sender._outcomes:
                break
        await sender.stop()

    asyncio.run(go())


def test_a_send_stores_its_message_and_job_and_nothing_else(world: Any) -> None:
    w, alice, app = world
    sent = _send(w, alice, [_message(client_ref="r1")])
    state = w.uow.committed
    stored = state.messages[sent.message_uuid]
    assert stored.record.status is None and stored.record.application_id == app
    assert stored.record.client_ref == "r1" and stored.root == sent.message_uuid
    [job] = state.jobs.values()
    assert (job.message_uuid, job.state, job.status_url) == (
        sent.message_uuid,
        "pending",
        STATUS_URL,
    )
    assert state.statuses == [] and state.webhooks == []  # submitted comes from the channel


def test_a_sender_records_what_the_channel_said_with_its_webhooks(world: Any) -> None:
    w, alice, _ = world
    sent = _send(w, alice, [_message()])
    channel = FakeChannel()
    _run_sender(w.uow, channel)
    state = w.uow.committed
    assert channel.submitted == [("447700900123", sent.message_uuid)]
    assert [c.status for u, c in state.statuses if u == sent.message_uuid] == [
        "submitted",
        "delivered",
    ]
    assert state.messages[sent.message_uuid].record.status == "delivered"
    hooks = [(h.kind, h.url, h.body["status"], h.order_uuid) for h in state.webhooks]
    assert hooks == [("status", STATUS_URL, "submitted", sent.message_uuid),
                     ("status", STATUS_URL, "delivered", sent.message_uuid)]  # fmt: skip
    [job] = state.jobs.values()
    assert job.state == "done" and job.attempts == 1


def test_failover_sends_the_next_message_only_after_a_failure(world: Any) -> None:
    w, alice, _ = world
    sent = _send(w, alice, [_message("fail"), _message("447700900124"), _message("never")])
    assert sent.workflow_id is not None
    channel = FakeChannel()
    _run_sender(w.uow, channel)
    state = w.uow.committed
    assert [to for to, _ in channel.submitted] == ["fail", "447700900124"]
    second = channel.submitted[1][1]
    assert state.messages[second].root == sent.message_uuid
    assert state.messages[second].workflow == {"workflow_id": sent.workflow_id,
                                                "items_number": "2", "items_total": "3"}  # fmt: skip
    bodies = [(h.message_uuid, h.body["status"], h.body["workflow"]["items_number"])
              for h in state.webhooks]  # fmt: skip
    assert bodies == [(sent.message_uuid, "rejected", "1"), (second, "submitted", "2"),
                      (second, "delivered", "2")]  # fmt: skip
    assert all(h.order_uuid == sent.message_uuid for h in state.webhooks)  # in order, together
    assert sorted(j.state for j in state.jobs.values()) == ["done", "done"]


def test_revoking_a_queued_message_cancels_its_job(world: Any) -> None:
    w, alice, app = world
    w.run(messages.send_message, alice, lambda: [_message()], Load())  # another, not revoked
    rcs = OutboundMessage("rcs", "text", "447700900123", "agent-1", {"text": "hi"})
    asyncio.run(accounts.provision_account(w.uow, api_key=alice.api_key, provider=Provider.RCS,
                                           external_id="agent-1"))  # fmt: skip
    token = BearerCredentials(f"app:{app}", "/v1/messages")
    w.run(accounts.link_application, alice, Provider.RCS, "agent-1", lambda: app)
    sent = _send(w, token, [rcs])
    w.run(messages.update_message, token, sent.message_uuid, lambda: "revoked")
    state = w.uow.committed
    job = next(j for j in state.jobs.values() if j.message_uuid == sent.message_uuid)
    assert job.state == "cancelled"
    assert state.messages[sent.message_uuid].record.status == "revoked"
    channel = FakeChannel()
    _run_sender(w.uow, channel)
    assert sent.message_uuid not in [u for _, u in channel.submitted]  # never sent


def test_past_the_backlog_bound_a_send_is_refused_and_nothing_stored(world: Any) -> None:
    w, alice, _ = world
    load = Load()
    load.wait = 2.0
    with pytest.raises(Throttled) as refused:
        _send(w, alice, [_message()], load)
    assert refused.value.retry_after == 2.0 and refused.value.backlog
    assert refused.value.limit == 30  # the tenant's messages per second, said in the 429
    assert w.uow.committed.messages == {} and w.uow.committed.jobs == {}
    # Refused once the caller is known (its answer says its limit), before the message is read.
    unknown = OutboundMessage("messenger", "text", "1", "no-such-page", {"text": "x"})
    with pytest.raises(NotAuthenticated):
        _send(w, BasicCredentials(alice.api_key, "wrong"), [unknown], load)
    with pytest.raises(Throttled):
        _send(w, alice, [unknown], load)
    load.wait = None
    with pytest.raises(InvalidSender):
        _send(w, alice, [unknown], load)


def test_a_channel_that_raises_fails_its_message_only(world: Any, caplog: Any) -> None:
    w, alice, _ = world
    broken = _send(w, alice, [_message("boom")])
    fine = _send(w, alice, [_message()])
    _run_sender(w.uow, FakeChannel())
    state = w.uow.committed
    assert state.messages[broken.message_uuid].record.status == "undeliverable"
    [error] = [c.error for u, c in state.statuses if u == broken.message_uuid]
    assert error is not None and error["title"] == "1331"
    assert state.messages[fine.message_uuid].record.status == "delivered"
    logged = caplog.text
    assert broken.message_uuid in logged and "RuntimeError" in logged
    assert "secret-token" not in logged  # the exception's text may hold anything


def test_a_silent_channel_is_retried_until_the_horizon(world: Any) -> None:
    w, alice, _ = world
    sent = _send(w, alice, [_message("slow")])
    channel = FakeChannel()
    _run_sender(w.uow, channel, timeout=0.02, policy=RetryPolicy(0.01, 0.01, 0.2))
    state = w.uow.committed
    tries = [u for _, u in channel.submitted]
    assert tries.count(sent.message_uuid) >= 2  # tried again after the first timeout
    assert state.messages[sent.message_uuid].record.status == "undeliverable"
    [(_, change)] = state.statuses
    assert change.error is not None and "tries over" in change.error["detail"]
