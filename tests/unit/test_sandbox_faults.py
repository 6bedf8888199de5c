"""The sandbox's fault switches on the in-memory fakes (tests/unit/fakes.py): their rules, the
use cases (the tenant's, the operator's), the reserved recipients' one table that the channel
and the `fail` switch share, and the send path (a claim's senders read once; a switch obeyed by
the sender and the sandbox channel)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from chatapp_accounts.channels.sandbox import (
    FORCED,
    RESERVED_RECIPIENTS,
    SandboxChannel,
    reserved_recipients,
)
from chatapp_accounts.domain import messages, rules, sandbox
from chatapp_accounts.domain.errors import AccountNotFound, InvalidMessageParams
from chatapp_accounts.domain.models import NO_FAULTS, Faults, OutboundMessage, SendJob
from chatapp_accounts.domain.providers import SenderCredentials, SendTry

from .test_message_use_cases import CAPS, Load, _run_sender
from .test_use_cases import World


@pytest.fixture
def world() -> tuple[World, Any, Any]:
    world = World()
    alice, bob = world.tenant(), world.tenant()
    app = world.app(alice, CAPS)
    world.page(alice, "page-1", app)
    world.page(alice, "page-2", app)
    return world, alice, bob


def test_the_rules() -> None:
    assert rules.sandbox_delay_max(10.0) == 9.0  # the default timeout: a second to spare
    assert rules.sandbox_delay_max(60.0) == rules.SANDBOX_DELAY_CAP == 10.0
    assert rules.sandbox_delay_max(0.5) == 0.0
    for fine in (0.0, 0.001, 9.0):
        assert rules.sandbox_delay_problem(fine, 9.0) is None
    for bad in (-0.001, 9.001, math.inf, -math.inf, math.nan):
        assert rules.sandbox_delay_problem(bad, 9.0) == "must be a number of seconds from 0 to 9"
    for fail in (None, "rejected", "undeliverable"):
        assert rules.sandbox_fail_problem(fail) is None
    for fail in ("submitted", "REJECTED", ""):
        assert rules.sandbox_fail_problem(fail) is not None


def test_a_tenant_reads_and_replaces_its_accounts_switches(world: Any) -> None:
    w, alice, _ = world
    assert w.run(sandbox.get_faults, alice, "messenger", "page-1") == NO_FAULTS
    stored = w.run(sandbox.set_faults, alice, "messenger", "page-1",
                   lambda: Faults(2.5, "rejected"), 9.0)  # fmt: skip
    assert stored == Faults(2.5, "rejected")
    assert w.run(sandbox.get_faults, alice, "messenger", "page-1") == stored
    assert w.run(sandbox.get_faults, alice, "messenger", "page-2") == NO_FAULTS  # its own
    cleared = w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: Faults(), 9.0)
    assert cleared == NO_FAULTS == w.run(sandbox.get_faults, alice, "messenger", "page-1")


def test_another_tenants_account_is_not_found_and_keeps_its_switches(world: Any) -> None:
    w, alice, bob = world
    w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: Faults(1.0, "rejected"))
    for channel, external_id in (("messenger", "page-1"), ("messenger", "nope"),
                                 ("whatsapp", "page-1"), ("sms", "page-1"),
                                 ("messenger", "not an id")):  # fmt: skip
        with pytest.raises(AccountNotFound):
            w.run(sandbox.get_faults, bob, channel, external_id)
        with pytest.raises(AccountNotFound):
            w.run(sandbox.set_faults, bob, channel, external_id, lambda: NO_FAULTS)
    assert w.run(sandbox.get_faults, alice, "messenger", "page-1") == Faults(1.0, "rejected")


@pytest.mark.parametrize(
    ("faults", "names"),
    [(Faults(-1.0), ["delay"]), (Faults(9.5), ["delay"]), (Faults(math.nan), ["delay"]),
     (Faults(0.0, "lost"), ["fail"]), (Faults(60.0, "submitted"), ["delay", "fail"])],
)  # fmt: skip
def test_switches_past_the_rules_change_nothing(world: Any, faults: Faults,
                                                names: list[str]) -> None:  # fmt: skip
    w, alice, _ = world
    w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: Faults(1.0, "rejected"))
    commits = w.uow.commits
    with pytest.raises(InvalidMessageParams) as refused:
        w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: faults, 9.0)
    assert [p.name for p in refused.value.params or []] == names
    assert w.uow.commits == commits
    assert w.run(sandbox.get_faults, alice, "messenger", "page-1") == Faults(1.0, "rejected")


def test_the_operator_reaches_any_tenants_account_and_keeps_what_it_does_not_set(
    world: Any,
) -> None:
    w, alice, _ = world
    w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: Faults(1.0, "rejected"))
    assert asyncio.run(sandbox.operator_faults(w.uow, "messenger", "page-1")) == Faults(
        1.0, "rejected"
    )
    changed, owner = asyncio.run(sandbox.operator_set_faults(
        w.uow, "messenger", "page-1", lambda current: Faults(current.delay, "undeliverable")))  # fmt: skip
    assert changed == Faults(1.0, "undeliverable") and owner == alice.api_key
    assert w.run(sandbox.get_faults, alice, "messenger", "page-1") == changed
    with pytest.raises(InvalidMessageParams):
        asyncio.run(sandbox.operator_set_faults(
            w.uow, "messenger", "page-1", lambda current: Faults(9.5), 9.0))  # fmt: skip
    for channel, external_id in (("messenger", "nope"), ("rcs", "page-1"), ("sms", "page-1")):
        with pytest.raises(AccountNotFound):
            asyncio.run(sandbox.operator_faults(w.uow, channel, external_id))
        with pytest.raises(AccountNotFound):
            asyncio.run(sandbox.operator_set_faults(w.uow, channel, external_id, lambda c: c))


def test_the_reserved_recipients_are_one_table_the_fail_switch_shares() -> None:
    assert reserved_recipients() == [
        {"suffix": "0001", "status": "undeliverable", "code": "1260",
         "title": "Destination unreachable",
         "detail": "The message could not be delivered to the phone number."},
        {"suffix": "0002", "status": "rejected", "code": "1282",
         "title": "Message rejected by provider", "detail": "The provider blocked the message."},
        {"suffix": "0003", "status": "submitted", "code": None, "title": None, "detail": None},
    ]  # fmt: skip
    assert set(FORCED) == set(rules.SANDBOX_FAILURES)  # every failure the rules allow
    for row in RESERVED_RECIPIENTS:  # the channel ends each as its row says
        changes = SandboxChannel.statuses("44770090" + row.suffix, "u-1")
        assert changes[-1].status == row.status
        assert (changes[-1].error or {}).get("title") == row.code
        if row.code is not None:  # a forced failure ends the same way, whatever the `to`
            forced = SandboxChannel.statuses("447700900123", "u-1", row.status)
            assert [(c.status, c.error) for c in forced] == [(c.status, c.error) for c in changes]
    assert [c.status for c in SandboxChannel.statuses("447700900123", "u")] == [
        "submitted", "delivered"]  # fmt: skip


def _try(to: str, faults: Faults) -> SendTry:
    message = OutboundMessage("messenger", "text", to, "page-1", {"text": "hi"})
    job = SendJob(1, 1, message, "u-" + to, "u-" + to, "app", None, None, 1, 0.0, False, [], 0.0)
    return SendTry(job, SenderCredentials(faults=faults))


def test_a_delay_is_awaited_with_the_event_loop_free() -> None:
    channel = SandboxChannel(delay_max=0.3)
    done: list[str] = []

    async def submit(to: str, faults: Faults) -> None:
        taken = await channel.submit(_try(to, faults))
        done.append(f"{to}:{taken.changes[-1].status}")

    async def go() -> None:
        await asyncio.gather(submit("slow", Faults(60.0)),  # cut to delay_max
                             submit("quick", NO_FAULTS), submit("0001", Faults(0.05)))  # fmt: skip

    asyncio.run(go())
    assert done == ["quick:delivered", "0001:undeliverable", "slow:delivered"]


def test_the_sender_obeys_the_switches_reading_a_claims_senders_once(world: Any) -> None:
    w, alice, _ = world
    w.run(sandbox.set_faults, alice, "messenger", "page-1", lambda: Faults(0.0, "rejected"))
    sent = {}
    for sender in ("page-1", "page-2", "page-1"):
        batch = [OutboundMessage("messenger", "text", "447700900123", sender, {"text": "hi"})]
        made = w.run(messages.send_message, alice, lambda b=batch: b, Load())
        sent[made.message_uuid] = sender
    _run_sender(w.uow, SandboxChannel())
    state = w.uow.committed
    for message_uuid, sender in sent.items():
        statuses = [c for u, c in state.statuses if u == message_uuid]
        if sender == "page-1":
            assert [c.status for c in statuses] == ["rejected"]
            assert statuses[0].error is not None and statuses[0].error["title"] == "1282"
        else:
            assert [c.status for c in statuses] == ["submitted", "delivered"]
    assert w.uow.sender_reads == 1  # the three jobs, one claim: their senders in one read
