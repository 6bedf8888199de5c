"""Messages without a server: the retry policy (Vonage's schedule), the spec's 422 for each way
a body can be wrong, and the served specs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from chatapp_accounts.api.message_bodies import inbound_message, messages_query, outbound_messages
from chatapp_accounts.api.openapi import (
    fix_status_enums,
    load_published_messages,
    served_messages_spec_bytes,
    served_sandbox_spec_bytes,
)
from chatapp_accounts.delivery.dispatcher import LAG_HIGH, LAG_LOW, next_share, share_floor
from chatapp_accounts.domain import errors
from chatapp_accounts.domain.webhooks import Outcome, RetryPolicy, decide

ROOT = Path(__file__).resolve().parents[2]
POLICY = RetryPolicy(first=5, max_interval=900, retry_for=86400)


def test_retry_schedule_doubles_from_5_s_to_15_min_for_24_h() -> None:
    delays = [decide(Outcome(500), n, 0, 0, POLICY).next_attempt_at for n in range(1, 10)]
    assert delays == [5, 10, 20, 40, 80, 160, 320, 640, 900]
    assert decide(Outcome(None, "refused"), 3, 0, 100, POLICY).next_attempt_at == 120
    assert decide(Outcome(429, retry_after=30), 1, 0, 10, POLICY).next_attempt_at == 40
    assert decide(Outcome(503, retry_after=7), 6, 0, 10, POLICY).next_attempt_at == 17
    # Retry-After is only taken from 429 and 503.
    assert decide(Outcome(500, retry_after=7), 1, 0, 10, POLICY).next_attempt_at == 15


@pytest.mark.parametrize(
    ("outcome", "state"),
    [(Outcome(200), "delivered"), (Outcome(204), "delivered"), (Outcome(404), "failed"),
     (Outcome(301), "failed"), (Outcome(None, "x", permanent=True), "failed"),
     (Outcome(502), "pending"), (Outcome(None, "timeout"), "pending")],
)  # fmt: skip
def test_what_an_answer_makes_of_a_webhook(outcome: Outcome, state: str) -> None:
    assert decide(outcome, 1, 0, 1, POLICY).state == state


def test_a_retry_past_the_window_fails_the_webhook() -> None:
    assert decide(Outcome(500), 20, 0, 86000, POLICY).state == "failed"
    assert decide(Outcome(429, retry_after=3600), 2, 0, 85000, POLICY).state == "failed"


def _body(**fields: object) -> bytes:
    base = {"channel": "messenger", "message_type": "text", "to": "u1", "from": "p1", "text": "hi"}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "error", "names"),
    [
        (b"{", errors.InvalidJson, None),
        (b"[1]", errors.InvalidJson, None),
        (_body(channel="sms"), errors.UnsupportedChannel, ["channel"]),
        (_body(channel=None), errors.UnsupportedChannel, ["channel"]),
        (_body(message_type="template"), errors.InvalidMessageType, ["message_type"]),
        (_body(messenger={"category": "x"}), errors.InvalidChannelParams, ["messenger.category"]),
        (_body(to="u" * 51), errors.InvalidRecipient, ["to"]),
        (_body(**{"from": ""}), errors.InvalidSender, ["from"]),
        (_body(text=None, client_ref=5), errors.InvalidMessageParams, ["text", "client_ref"]),
        (_body(webhook_version="v0.1"), errors.InvalidMessageParams, ["webhook_version"]),
        (_body(webhook_url="ftp://x"), errors.InvalidMessageParams, ["webhook_url"]),
        (_body(client_ref="r" * 101), errors.InvalidClientRef, ["client_ref"]),
        (_body(failover=[]), errors.InvalidMessageParams, ["failover"]),
        (_body(failover=[{"channel": "whatsapp", "message_type": "text", "to": "4477",
                          "from": "4478"}]), errors.InvalidMessageParams, ["failover[0].text"]),
    ],
)  # fmt: skip
def test_each_wrong_body_gets_its_spec_error(
    raw: bytes, error: type[errors.MessageRejected], names: list[str] | None
) -> None:
    with pytest.raises(error) as caught:
        outbound_messages(raw)
    assert type(caught.value) is error
    if names is not None:
        assert [p.name for p in caught.value.params or []] == names


def test_a_good_send_and_its_failover_are_read_out() -> None:
    failover = {"channel": "rcs", "message_type": "text", "to": "447700900123", "from": "agent",
                "text": "fallback"}  # fmt: skip
    first, second = outbound_messages(_body(client_ref="r1", failover=[failover]))
    assert (first.channel, first.sender, first.to, first.client_ref) == (
        "messenger",
        "p1",
        "u1",
        "r1",
    )
    assert "failover" not in first.content and second.channel == "rcs"


def test_sandbox_inbound_is_checked_as_the_webhook_it_becomes() -> None:
    good = inbound_message(json.dumps({"channel": "whatsapp", "to": "447700900000",
        "from": "447700900001", "message_type": "image", "image": {"url": "https://x/y.png"}}).encode())  # fmt: skip
    assert good.content == {"image": {"url": "https://x/y.png"}}
    with pytest.raises(errors.InvalidMessageParams) as caught:
        inbound_message(json.dumps({"channel": "whatsapp", "to": "447700900000",
                                    "from": "447700900001", "message_type": "text"}).encode())  # fmt: skip
    assert [p.name for p in caught.value.params or []] == ["text"]
    with pytest.raises(errors.InvalidMessageParams):
        inbound_message(json.dumps({"channel": "rcs", "to": "a", "from": "447700900001",
                                    "message_type": "text", "text": "x", "context": "u"}).encode())  # fmt: skip


def test_the_messages_spec_is_kept_verbatim_and_served_with_its_status_fix() -> None:
    published = ROOT / "src/chatapp_accounts/api/spec/messages.v1.20.0.yaml"
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    assert digest == "5287c756824066b63b10ba0800111babbe34d66beaf22886b1c8c71710c2efa6"
    spec = load_published_messages()
    before = json.dumps(spec)
    fixed = json.loads(before)
    fix_status_enums(fixed)
    assert json.dumps(spec) == before  # the published copy is untouched
    part = fixed["components"]["schemas"]["messageStatusRCS"]["allOf"][0]["properties"]["status"]
    assert part["enum"] == ["submitted", "delivered", "rejected", "undeliverable", "read"]
    served = json.loads(served_messages_spec_bytes())
    assert served["servers"] == [{"url": "/v1", "description": "this server"}]
    assert "fix_status_enums" in (ROOT / "docs/messages.md").read_text()


@pytest.mark.parametrize(
    "params",
    [{"page_number": "0"}, {"page_number": "²"}, {"page_size": "101"}, {"page_size": "1e2"},
     {"direction": "sideways"}, {"account": "a b"}],
)  # fmt: skip
def test_a_bad_sandbox_listing_query_is_a_1150(params: dict[str, str]) -> None:
    """The page parameters are read as the accounts list reads them (ASCII digits only: "²"
    is a digit to str.isdigit, and no number to int)."""
    with pytest.raises(errors.InvalidMessageParams) as caught:
        messages_query(params)
    assert [p.name for p in caught.value.params or []] == list(params)


def test_the_sandbox_spec_is_valid_openapi() -> None:
    validate(json.loads(served_sandbox_spec_bytes()))


def test_the_dispatcher_yields_to_requests_only_while_the_loop_lags() -> None:
    """A destination's share of attempts at once: halved while the event loop lags and
    requests are in flight, down to the floor (half the setting: accepted work is never
    starved); grown back by one a turn otherwise (a backlog draining with no request in flight
    takes the whole loop)."""
    lagging, calm = LAG_HIGH * 2, LAG_LOW / 2
    assert share_floor(32) == 16 and share_floor(1) == 1
    assert next_share(32, lagging, requests=3, ceiling=32) == 16
    assert next_share(20, lagging, requests=3, ceiling=32) == 16
    assert next_share(16, lagging, requests=3, ceiling=32) == 16
    assert next_share(16, lagging, requests=0, ceiling=32) == 17  # its own attempts' lag
    assert next_share(16, calm, requests=3, ceiling=32) == 17
    assert next_share(32, calm, requests=3, ceiling=32) == 32
    between = (LAG_LOW + LAG_HIGH) / 2
    assert next_share(10, between, requests=3, ceiling=32) == 10
    assert next_share(8, lagging, requests=1, ceiling=1) == 1  # never above the setting
