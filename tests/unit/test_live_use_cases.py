"""Live channels' use cases on the in-memory fakes (docs/providers.md): a provider's refusal
retried or mapped, per-account pacing and throttles in the sender, credentials checked when a
send is accepted, and callbacks: statuses by provider id that never go backwards, held statuses,
Messenger watermarks, inbound messages routed and applied once. No SQL, no HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chatapp_accounts.channels.sandbox import SandboxChannel
from chatapp_accounts.delivery.pacing import Pacer
from chatapp_accounts.delivery.sender import Sender
from chatapp_accounts.domain import accounts, callbacks, messages
from chatapp_accounts.domain.errors import InvalidSender
from chatapp_accounts.domain.models import (
    BasicCredentials,
    InboundInput,
    MessageRecord,
    OutboundMessage,
    Provider,
    SendJob,
    StatusChange,
    StoredMessage,
)
from chatapp_accounts.domain.providers import (
    ProviderInbound,
    ProviderStatus,
    Refusal,
    SenderCredentials,
    SendTry,
    Taken,
    Watermark,
)
from chatapp_accounts.domain.webhooks import RetryPolicy

from .fakes import FakeUnitOfWorkFactory
from .test_message_use_cases import CAPS, STATUS_URL, Channels, Load
from .test_use_cases import World

POLICY = RetryPolicy(0.01, 0.02, 60)


def _job(attempts: int = 1, first: float = 1000.0) -> SendJob:
    message = OutboundMessage("whatsapp", "text", "447700900123", "447700900000", {"text": "x"})
    return SendJob(1, 1, message, "uuid-1", "uuid-1", "app", None, None, attempts, first, False,
                   [], first)  # fmt: skip


def test_a_permanent_refusal_ends_rejected_with_vonage_title_and_provider_detail() -> None:
    refusal = Refusal(retry=False, code="1300", detail="Graph error 100/2018001: No matching user")
    outcome = messages.send_refused(_job(), refusal, 1001.0, POLICY)
    [change] = outcome.changes
    assert change.status == "rejected" and change.error is not None
    assert change.error["title"] == "1300"
    assert change.error["detail"] == (
        "Not part of the provider network - Graph error 100/2018001: No matching user"
    )
    assert change.error["instance"] == "uuid-1"


def test_a_transient_refusal_waits_at_least_retry_after_then_ends_by_its_kind() -> None:
    wait = Refusal(retry=True, code="1331", detail="Graph error 2: try later", after=30.0)
    outcome = messages.send_refused(_job(), wait, 1001.0, RetryPolicy(1, 60, 3600), lambda: 0.0)
    assert outcome.changes == [] and outcome.retry_at == 1031.0
    jittered = messages.send_refused(_job(attempts=3), Refusal(True, "1331", "x"), 1001.0,
                                     RetryPolicy(1, 60, 3600), lambda: 0.0)  # fmt: skip
    assert jittered.retry_at == 1001.0 + 4 * 0.75  # the schedule, jitter at its least
    late = 1000.0 + 3600
    throttled = Refusal(True, "1000", "Graph error 130429: Rate limit hit", throttled=True)
    [ended] = messages.send_refused(_job(attempts=9), throttled, late, POLICY).changes
    assert ended.status == "rejected" and ended.error is not None
    assert ended.error["title"] == "1000"
    assert ended.error["detail"] == (
        "Throttled - 9 tries over 3600 s; last: Graph error 130429: Rate limit hit"
    )
    [down] = messages.send_refused(_job(attempts=9), Refusal(True, "1331", "HTTP 502"), late,
                                   POLICY).changes  # fmt: skip
    assert down.status == "undeliverable" and down.error is not None
    assert down.error["title"] == "1331" and "9 tries over 3600 s; last: HTTP 502" in down.error[
        "detail"]  # fmt: skip


def _stored(status: str | None) -> StoredMessage:
    record = MessageRecord("u", "outbound", "whatsapp", "text", "to", "from", status, "app",
                           None, 1.0, {})  # fmt: skip
    return StoredMessage(1, "u", 1, record, None, None)


@pytest.mark.parametrize(
    ("current", "reported", "added"),
    [
        ("submitted", "delivered", ["delivered"]),
        ("submitted", "read", ["delivered", "read"]),  # every delivery is counted
        ("delivered", "read", ["read"]),
        ("delivered", "delivered", []),  # a duplicate
        ("read", "delivered", []),  # a late one
        ("read", "read", []),
        ("submitted", "sent", []),  # WhatsApp's sent adds nothing new
        ("submitted", "rejected", ["rejected"]),
        ("delivered", "rejected", []),
        ("rejected", "delivered", []),
        ("undeliverable", "read", []),
    ],
)
def test_statuses_never_go_backwards(current: str, reported: str, added: list[str]) -> None:
    changes = callbacks.advance(_stored(current), reported, 5.0, None)
    assert [c.status for c in changes] == added


def test_pacing_gives_turns_at_the_rate_and_holds_the_throttled_account_only() -> None:
    now = [100.0]
    pacer = Pacer(clock=lambda: now[0])
    one, two = ("whatsapp", "1", "a"), ("whatsapp", "1", "b")
    pair = (*one, "447700900123")
    turns = [pacer.turn(job, (one, pair), 10.0) for job in range(14)]
    assert turns[:11] == [0.0] * 11  # a second's burst (and the one of now)
    assert turns[11:] == pytest.approx([0.1, 0.2, 0.3])  # then one turn each 1/rate
    # Job 13, deferred to its turn 0.3 s away, keeps it when it is claimed then.
    now[0] += 0.3
    assert pacer.turn(13, (one, pair), 10.0) == 0.0
    assert pacer.turn(99, (one, pair), 10.0) == pytest.approx(0.1)  # after the reserved ones
    pacer.throttle((one, pair), 30.0)
    assert pacer.turn(14, (one, pair), 10.0) == pytest.approx(30.0)
    assert pacer.turn(15, (one, pair), 10.0) == pytest.approx(30.1)  # no burst after it
    assert pacer.turn(20, (two,), 10.0) == 0.0  # another account goes on
    pacer.throttle((two, (*two, "x")), 5.0, pair=True)  # the pair limit: that customer only
    assert pacer.turn(16, (two, (*two, "x")), 10.0) == pytest.approx(5.0)
    assert pacer.turn(17, (two, (*two, "y")), 10.0) == 0.0


class Live(SandboxChannel):
    """A live channel: takes a message and gives it a provider id, or answers as told by the
    recipient (`throttle` -> a throttle refusal; `gone` -> a permanent refusal)."""

    rate: float | None = 1000.0
    live: bool = True

    def __init__(self) -> None:
        self.tries: list[tuple[str, str, SenderCredentials | None]] = []

    async def submit(self, send: SendTry) -> Taken | Refusal:  # type: ignore[override]
        message = send.job.message
        self.tries.append((message.sender, message.to, send.credentials))
        if message.to == "throttle":
            return Refusal(retry=True, code="1000", detail="Graph error 130429: x",
                           throttled=True, after=30.0)  # fmt: skip
        if message.to == "gone":
            return Refusal(retry=False, code="1300", detail="Graph error 131026: undeliverable")
        return Taken([StatusChange("submitted", time.time())], f"wamid.{len(self.tries)}")


def _number(w: World, who: BasicCredentials, app: str, number: str, live: bool = True) -> None:
    extra: dict[str, Any] = (
        {"access_token": f"token-{number}", "phone_number_id": f"id-{number}", "waba_id": "w"}
        if live else {}
    )  # fmt: skip
    asyncio.run(accounts.provision_account(w.uow, api_key=who.api_key, provider=Provider.WHATSAPP,
                                           external_id=number, **extra))  # fmt: skip
    w.run(accounts.link_application, who, Provider.WHATSAPP, number, lambda: app)


@pytest.fixture
def live_world() -> tuple[World, BasicCredentials, str]:
    w = World()
    alice = w.tenant()
    app = w.app(alice, CAPS)
    _number(w, alice, app, "447700900000")
    _number(w, alice, app, "447700900001")
    _number(w, alice, app, "447700900009", live=False)
    return w, alice, app


def _wa(sender: str, to: str) -> OutboundMessage:
    return OutboundMessage("whatsapp", "text", to, sender, {"text": "hi"})


def _send(w: World, who: Any, message: OutboundMessage) -> str:
    sent = w.run(messages.send_message, who, lambda: [message], Load(), frozenset({"whatsapp"}))
    return str(sent.message_uuid)


def _run_sender(uow: FakeUnitOfWorkFactory, channel: Live, seconds: float = 1.0) -> None:
    async def go() -> None:
        sender = Sender(uow, Channels(channel), POLICY, timeout=5.0, lease=30.0,
                        concurrency=8)  # fmt: skip
        sender.start()
        await asyncio.sleep(seconds)
        await sender.stop()

    asyncio.run(go())


def test_a_live_send_from_a_number_without_credentials_is_refused_at_once(
    live_world: Any,
) -> None:
    w, alice, _ = live_world
    with pytest.raises(InvalidSender) as refused:
        _send(w, alice, _wa("447700900009", "447700900123"))
    assert refused.value.detail == (
        "The whatsapp account '447700900009' cannot send live: the whatsapp number has no "
        "phone_number_id and no access token: provision it with --phone-number-id, --waba-id "
        "and --access-token to send live"
    )
    assert w.uow.committed.messages == {}  # nothing stored


def test_a_throttled_number_waits_while_the_other_sends(live_world: Any) -> None:
    w, alice, _ = live_world
    channel = Live()

    async def go() -> tuple[str, str, str]:
        sender = Sender(w.uow, Channels(channel), POLICY, timeout=5.0, lease=30.0,
                        concurrency=8)  # fmt: skip
        sender.start()
        throttled = _send_async(w, alice, _wa("447700900000", "throttle"))
        await asyncio.sleep(0.2)
        later = _send_async(w, alice, _wa("447700900000", "447700900123"))
        other = _send_async(w, alice, _wa("447700900001", "447700900124"))
        gone = _send_async(w, alice, _wa("447700900001", "gone"))
        await asyncio.sleep(0.3)
        await sender.stop()
        return await throttled, await later, await other + " " + await gone

    throttled, later, both = asyncio.run(go())
    other, gone = both.split()
    state = w.uow.committed
    sent = [(sender, to) for sender, to, _ in channel.tries]
    assert sent.count(("447700900000", "throttle")) == 1
    assert ("447700900000", "447700900123") not in sent  # held back with its number
    assert state.messages[other].record.status == "submitted"  # the other number went on
    [error] = [c.error for u, c in state.statuses if u == gone]
    assert error is not None and error["title"] == "1300"
    jobs = {j.message_uuid: j for j in state.jobs.values()}
    assert state.messages[throttled].record.status is None
    assert jobs[throttled].due_at > time.time() + 20 and jobs[throttled].state == "pending"
    waiting = jobs[later]  # deferred to the end of the throttle, its claim not counted
    assert waiting.state == "pending" and waiting.due_at > time.time() + 20
    assert waiting.attempts == 0  # (the horizon counts from its first claim)
    # Each try had its number's credentials, read when it was claimed.
    creds = {sender: c for sender, _, c in channel.tries}
    assert creds["447700900001"] == SenderCredentials("token-447700900001", "id-447700900001", "w")
    assert "token-" not in repr(creds["447700900001"])


def _send_async(w: World, who: Any, message: OutboundMessage) -> Any:
    async def send() -> str:
        sent = await messages.send_message(w.uow, w.security, who, lambda: [message], Load(),
                                           frozenset({"whatsapp"}))  # fmt: skip
        return str(sent.message_uuid)

    return asyncio.ensure_future(send())


def _callback(w: World, *events: Any) -> callbacks.CallbackCounts:
    return asyncio.run(callbacks.apply_callbacks(w.uow, [list(events)]))[0]


def _status(wamid: str, status: str, **extra: Any) -> ProviderStatus:
    return ProviderStatus("whatsapp", "id-447700900000", wamid, status, 10.0, **extra)  # type: ignore[arg-type]


def test_callbacks_apply_statuses_once_and_in_order(live_world: Any) -> None:
    w, alice, _ = live_world
    message_uuid = _send(w, alice, _wa("447700900000", "447700900123"))
    _run_sender(w.uow, Live(), 0.2)
    state = w.uow.committed
    assert state.provider_ids[("whatsapp", "wamid.1")][1] == message_uuid

    counts = _callback(w, _status("wamid.1", "sent"), _status("wamid.1", "delivered"))
    assert (counts.applied, counts.ignored, counts.duplicate) == (1, 1, 0)
    again = _callback(w, _status("wamid.1", "delivered"), _status("wamid.1", "read"),
                      _status("wamid.1", "delivered"))  # fmt: skip
    assert (again.applied, again.duplicate) == (1, 2)
    state = w.uow.committed
    assert [c.status for u, c in state.statuses if u == message_uuid] == [
        "submitted", "delivered", "read"]  # fmt: skip
    hooks = [h.body["status"] for h in state.webhooks if h.message_uuid == message_uuid]
    assert hooks == ["submitted", "delivered", "read"]
    assert all(h.url == STATUS_URL for h in state.webhooks)
    unknown = _callback(w, ProviderStatus("whatsapp", "id-nobody", "wamid.1", "read", 1.0))
    assert unknown.unknown == 1


def test_a_status_before_its_send_is_recorded_is_held_then_applied(live_world: Any) -> None:
    w, alice, _ = live_world
    message_uuid = _send(w, alice, _wa("447700900000", "447700900123"))
    failed = _status("wamid.1", "rejected", error_code="1300",
                     error_detail="Graph error 131026: Message undeliverable")  # fmt: skip
    assert _callback(w, failed).held == 1
    assert asyncio.run(callbacks.release_held(w.uow)) == (0, 0, 0)  # its id is not known yet
    _run_sender(w.uow, Live(), 0.2)
    # Applied once its id is recorded, however long it waited (never dropped then).
    assert asyncio.run(callbacks.release_held(w.uow, now=time.time() + 61)) == (1, 0, 0)
    state = w.uow.committed
    assert state.held == {}
    [rejected] = [c for u, c in state.statuses if u == message_uuid and c.status == "rejected"]
    assert rejected.error is not None and rejected.error["title"] == "1300"
    assert rejected.error["detail"] == (
        "Not part of the provider network - Graph error 131026: Message undeliverable"
    )
    assert rejected.error["instance"] == message_uuid
    # One whose id is recorded is applied, however late; one never matched is dropped.
    _callback(w, _status("wamid.1", "read"))
    assert w.uow.committed.held == {}  # (its id is known now: applied at once)
    _callback(w, _status("wamid.never", "delivered"))
    assert asyncio.run(callbacks.release_held(w.uow, now=time.time() + 61)) == (0, 0, 1)


def test_a_messenger_watermark_reaches_every_message_taken_before_it() -> None:
    w = World()
    alice = w.tenant()
    app = w.app(alice, CAPS)
    w.page(alice, "page-1", app)
    uuids = []
    for text in ("one", "two"):
        message = OutboundMessage("messenger", "text", "psid-1", "page-1", {"text": text})
        sent = w.run(messages.send_message, alice, lambda m=message: [m], Load(),
                     frozenset({"messenger"}))  # fmt: skip
        uuids.append(sent.message_uuid)
    _run_sender(w.uow, Live(), 0.2)
    state = w.uow.committed
    taken = max(at for _, _, _, _, at in state.provider_ids.values())
    counts = _callback(w, Watermark("page-1", "psid-1", "read", taken + 1))
    assert counts.applied == 2
    state = w.uow.committed
    for message_uuid in uuids:  # delivered then read, each
        assert [c.status for u, c in state.statuses if u == message_uuid] == [
            "submitted", "delivered", "read"]  # fmt: skip
    assert _callback(w, Watermark("page-1", "psid-1", "delivered", taken + 2)).applied == 0


def test_an_inbound_message_is_routed_by_phone_number_id_and_applied_once(
    live_world: Any,
) -> None:
    w, alice, _ = live_world
    replied = _send(w, alice, _wa("447700900000", "447700900123"))
    _run_sender(w.uow, Live(), 0.2)
    inbound = ProviderInbound(
        "whatsapp", "id-447700900000",
        InboundInput("whatsapp", "", "447700900123", "text", {"text": "hello"},
                     profile_name="Ann"),
        "wamid.in-1", context_provider_id="wamid.1",
    )  # fmt: skip
    assert _callback(w, inbound).inbound == 1
    assert _callback(w, inbound).duplicate == 1  # the provider's retry: nothing twice
    state = w.uow.committed
    [hook] = [h for h in state.webhooks if h.kind == "inbound"]
    assert hook.url == "https://app.example/in"
    assert {k: hook.body[k] for k in ("to", "from", "text", "channel", "profile")} == {
        "to": "447700900000", "from": "447700900123", "text": "hello", "channel": "whatsapp",
        "profile": {"name": "Ann"}}  # fmt: skip
    assert hook.body["context"] == {"message_uuid": replied, "message_from": "447700900000"}
