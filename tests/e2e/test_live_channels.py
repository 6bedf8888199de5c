"""Live mode end to end (docs/providers.md): a real server process with WhatsApp, Messenger and
RCS live, the loopback fakes standing in for Meta and Google; an application's webhooks go to a
receiver, where each is checked against the Messages spec and Vonage's signature, as
`test_messages.py` does for the sandbox."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from chatapp_accounts.fakes.meta import MetaFake
from chatapp_accounts.fakes.rbm import RbmFake

from .live import (
    AGENT,
    NUMBER,
    PAGE,
    PAGE_TOKEN,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    WA_TOKEN,
    fakes,
    live_setup,
    point_callbacks,
    send,
    text,
)
from .messaging import Receiver, check_webhook, receiver
from .server import EXE, base_env, new_tenant, running_server


@pytest.fixture
def live_world(db_env: dict[str, str], tmp_path: Path) -> Any:
    with fakes(tmp_path) as (meta, rbm, settings), receiver() as hooks:
        env = base_env(**db_env, **settings)
        creds = new_tenant(env)
        with running_server(env) as server:
            point_callbacks(meta, rbm, server)
            live = live_setup(server, env, creds, hooks.url)
            yield meta, rbm, hooks, live, server, env


def _final(hooks: Receiver, message_uuid: str, status: str) -> list[str]:
    hooks.wait_for(lambda _: status in hooks.statuses(message_uuid))
    return hooks.statuses(message_uuid)


def _error(hooks: Receiver, message_uuid: str) -> dict[str, str]:
    [body] = [h.json for h in hooks.hooks if h.json.get("message_uuid") == message_uuid
              and "error" in h.json]  # fmt: skip
    error: dict[str, str] = body["error"]
    return error


def test_each_live_channel_reaches_its_provider_and_statuses_come_back(live_world: Any) -> None:
    meta, rbm, hooks, live, _, _ = live_world
    wa = send(live, "whatsapp", "447700900123")
    fb = send(live, "messenger", "psid-1")
    rcs = send(live, "rcs", "447700900124")
    assert _final(hooks, wa, "delivered") == ["submitted", "delivered"]
    assert _final(hooks, fb, "delivered") == ["submitted", "delivered"]
    assert _final(hooks, rcs, "delivered") == ["submitted", "delivered"]
    for hook in hooks.hooks:
        check_webhook(hook, live.creds["signature_secret"], live.creds["api_key"],
                      live.application_id)  # fmt: skip
        assert WA_TOKEN.encode() not in hook.body and PAGE_TOKEN.encode() not in hook.body
    sends = [r for r in meta.fake.requests if r["method"] == "POST"]
    by_product = {r["product"]: r for r in sends}
    whatsapp = by_product["whatsapp"]
    assert whatsapp["path"] == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert whatsapp["token_via"] == "header"  # never in the URL
    assert whatsapp["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": "447700900123", "type": "text",
                                "text": {"body": "hello on whatsapp", "preview_url": False}}  # fmt: skip
    messenger = by_product["messenger"]
    assert messenger["path"] == f"/v21.0/{PAGE}/messages" and messenger["token_via"] == "header"
    assert messenger["body"] == {"recipient": {"id": "psid-1"}, "messaging_type": "RESPONSE",
                                 "message": {"text": "hello on messenger"}}  # fmt: skip
    [agent_message] = [r for r in rbm.fake.requests if r["method"] == "POST"]
    assert (agent_message["message_id"], agent_message["agent_id"]) == (rcs, AGENT)
    assert agent_message["body"]["contentMessage"] == {"text": "hello on rcs"}
    assert rbm.fake.tokens_issued == 1  # one token for every send, until it expires


def test_provider_refusals_end_as_the_tables_say(live_world: Any) -> None:
    meta, _, hooks, live, _, _ = live_world
    unreachable = send(live, "whatsapp", "447700900026")  # 131026
    window = send(live, "messenger", "psid-0047")  # 10/2018278
    html = send(live, "whatsapp", "447700900502")  # an HTML 502, again and again
    throttled = send(live, "whatsapp", "447700900429")  # 130429 until the horizon
    assert _final(hooks, unreachable, "rejected") == ["rejected"]
    error = _error(hooks, unreachable)
    assert error["title"] == "1300" and "Graph error 131026" in error["detail"]
    assert _final(hooks, window, "rejected") == ["rejected"]
    assert _error(hooks, window)["title"] == "1340"
    assert _final(hooks, html, "undeliverable") == ["undeliverable"]
    error = _error(hooks, html)
    assert error["title"] == "1331" and "tries over" in error["detail"]
    assert "Graph answered HTTP 502" in error["detail"]
    assert _final(hooks, throttled, "rejected") == ["rejected"]
    assert _error(hooks, throttled)["title"] == "1000"
    tried = [r for r in meta.fake.requests if r["recipient"] == "447700900502"]
    assert len(tried) > 2  # retried until the horizon (2 s here)


def test_an_expired_token_is_1370_until_it_is_replaced(live_world: Any) -> None:
    meta, _, hooks, live, _, env = live_world
    meta.fake.expire_token(PAGE_TOKEN)
    first = send(live, "messenger", "psid-1")
    assert _final(hooks, first, "rejected") == ["rejected"]
    assert _error(hooks, first)["title"] == "1370"
    replaced = live.client.patch(
        f"/beta/chatapp-accounts/messenger/{PAGE}", json={"access_token": "EAAB-new-page-token"}
    )
    assert replaced.status_code == 200, replaced.text
    second = send(live, "messenger", "psid-1")
    assert _final(hooks, second, "delivered") == ["submitted", "delivered"]
    # A WhatsApp number's token: the operator replaces it (tenants cannot PATCH numbers).
    meta.fake.expire_token(WA_TOKEN)
    third = send(live, "whatsapp", "447700900123")
    assert _final(hooks, third, "rejected") == ["rejected"]
    assert _error(hooks, third)["title"] == "1370"
    done = subprocess.run(
        [EXE, "accounts", "set-token", "whatsapp", NUMBER, "--access-token-file", "-"],
        input="EAAB-new-whatsapp-token\n", env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "EAAB" not in done.stdout + done.stderr
    fourth = send(live, "whatsapp", "447700900123")
    assert _final(hooks, fourth, "delivered") == ["submitted", "delivered"]


def test_a_customer_reply_reaches_the_application_once_with_its_context(
    live_world: Any,
) -> None:
    meta, rbm, hooks, live, _, _ = live_world
    sent = send(live, "whatsapp", "447700900123")
    _final(hooks, sent, "delivered")
    [request] = [r for r in meta.fake.requests if r["method"] == "POST"]
    wamid = next(c["body"]["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
                 for c in meta.fake.callbacks)  # fmt: skip
    outcome = meta.run(meta.fake.inbound_whatsapp(PHONE_NUMBER_ID, "447700900123", "hi there",
                                                  context_wamid=wamid, profile_name="Ann"))  # fmt: skip
    assert outcome.acknowledged
    again = meta.run(meta.fake.post_signed(meta.fake.callbacks[-1]["body"]))  # a replay
    assert again.acknowledged
    rbm.run(rbm.fake.inbound_text(AGENT, "+447700900124", "from rcs"))
    found = hooks.wait_for(lambda seen: len([h for h in seen if h.path == "/inbound"]) >= 2)
    inbound = [h for h in found if h.path == "/inbound"]
    assert len(inbound) == 2
    wa = next(h.json for h in inbound if h.json["channel"] == "whatsapp")
    assert (wa["to"], wa["from"], wa["text"]) == (NUMBER, "447700900123", "hi there")
    assert wa["profile"] == {"name": "Ann"}
    assert wa["context"] == {"message_uuid": sent, "message_from": NUMBER}
    rcs = next(h.json for h in inbound if h.json["channel"] == "rcs")
    assert (rcs["to"], rcs["from"], rcs["text"]) == (AGENT, "447700900124", "from rcs")
    for hook in inbound:
        check_webhook(hook, live.creds["signature_secret"], live.creds["api_key"],
                      live.application_id)  # fmt: skip
    assert request["recipient"] == "447700900123"


def test_callbacks_without_the_providers_signature_are_refused(live_world: Any) -> None:
    meta, rbm, _, _, server, _ = live_world
    url = server.url + "/providers/meta/webhook"
    body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
    good = meta.fake.sign(body)
    other = meta.fake.sign(body + b" ")
    for headers in ({}, {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                    {"X-Hub-Signature-256": other}):  # fmt: skip
        refused = httpx.post(url, content=body, headers=headers)
        assert refused.status_code == 401
    assert httpx.post(url, content=body, headers={"X-Hub-Signature-256": good}).status_code == 200
    malformed = b"{not json"
    answer = httpx.post(url, content=malformed,
                        headers={"X-Hub-Signature-256": meta.fake.sign(malformed)})  # fmt: skip
    assert answer.status_code == 400
    challenge = httpx.get(url, params={"hub.mode": "subscribe", "hub.challenge": "12345",
                                       "hub.verify_token": VERIFY_TOKEN})  # fmt: skip
    assert (challenge.status_code, challenge.text) == (200, "12345")
    wrong = httpx.get(url, params={"hub.mode": "subscribe", "hub.challenge": "1",
                                   "hub.verify_token": "nope"})  # fmt: skip
    assert wrong.status_code == 403 and "1" not in wrong.text
    assert rbm.run(rbm.fake.setup_handshake(secret="s3cret")) == "s3cret"
    rbm_url = server.url + "/providers/rbm/webhook"
    nested = b"[" * 100_000 + b"]" * 100_000  # before any signature: a clear 400, never a 500
    assert httpx.post(rbm_url, content=nested).status_code == 400
    assert httpx.post(rbm_url, json={"clientToken": 123, "secret": "x"}).status_code == 403
    assert httpx.post(rbm_url, json={"clientToken": "fake-client-token",
                                     "secret": ["x"]}).status_code == 403  # fmt: skip
    forged = {"message": {"data": "eyJ9", "messageId": "1"}}
    assert httpx.post(rbm_url, json=forged, headers={"X-Goog-Signature": "AAAA"}).status_code == 401
    assert VERIFY_TOKEN not in server.output
    metrics = httpx.get(server.url + "/metrics").text
    assert (
        'chatapp_provider_callbacks_total{outcome="bad_signature",provider="meta"} 3.0' in metrics
    )


def test_metrics_count_provider_calls_without_secrets(live_world: Any) -> None:
    _, _, hooks, live, server, _ = live_world
    sent = send(live, "whatsapp", "447700900123")
    _final(hooks, sent, "delivered")
    metrics = httpx.get(server.url + "/metrics").text
    assert 'chatapp_provider_calls_total{outcome="ok",provider="meta"}' in metrics
    # Its delivered status was applied from the callback, or held until its send was recorded.
    assert ('chatapp_provider_callbacks_total{outcome="applied",provider="meta"}' in metrics
            or 'chatapp_held_statuses_total{outcome="applied"}' in metrics)  # fmt: skip
    assert "chatapp_provider_call_duration_seconds_bucket" in metrics
    for secret in (WA_TOKEN, PAGE_TOKEN, "fake-app-secret", VERIFY_TOKEN):
        assert secret not in metrics and secret not in server.output
    assert isinstance(MetaFake, type) and isinstance(RbmFake, type)


def test_patch_reaches_the_provider_revoke_on_rbm_read_on_whatsapp(live_world: Any) -> None:
    meta, rbm, hooks, live, server, _ = live_world
    pending = send(live, "rcs", "447700900300")  # RBM takes it, never delivers it
    assert _final(hooks, pending, "submitted") == ["submitted"]
    url = f"{server.url}/v1/messages/{pending}"
    revoked = httpx.patch(url, json={"status": "revoked"}, headers=live.bearer())
    assert revoked.status_code == 202, revoked.text
    deletes = [r for r in rbm.fake.requests if r["method"] == "DELETE"]
    assert [(d["message_id"], d["agent_id"]) for d in deletes] == [(pending, AGENT)]
    again = httpx.patch(url, json={"status": "revoked"}, headers=live.bearer())
    assert again.status_code == 422  # it is revoked (as in the sandbox): RBM not asked twice
    assert len([r for r in rbm.fake.requests if r["method"] == "DELETE"]) == 1

    outcome = meta.run(meta.fake.inbound_whatsapp(PHONE_NUMBER_ID, "447700900123", "read me"))
    found = hooks.wait_for(lambda seen: any(h.path == "/inbound" for h in seen))
    inbound = next(h.json for h in found if h.path == "/inbound")
    read = httpx.patch(f"{server.url}/v1/messages/{inbound['message_uuid']}",
                       json={"status": "read"}, headers=live.bearer())  # fmt: skip
    assert read.status_code == 202, read.text
    marked = [r for r in meta.fake.requests if r["body"].get("status") == "read"]
    assert [m["body"] for m in marked] == [{"messaging_product": "whatsapp", "status": "read",
                                           "message_id": outcome.id}]  # fmt: skip
    assert marked[0]["path"] == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert marked[0]["token_via"] == "header"


def test_failover_goes_from_a_live_channel_to_the_sandbox(live_world: Any) -> None:
    meta, _, hooks, live, _, _ = live_world
    body = text("whatsapp", "447700900026") | {"failover": [text("viber_service", "447700900123")]}
    answer = live.client.post("/v1/messages", json=body)
    assert answer.status_code == 202, answer.text
    first = answer.json()["message_uuid"]
    assert _final(hooks, first, "rejected") == ["rejected"]
    found = hooks.wait_for(lambda seen: any(h.json["channel"] == "viber_service"
                                            and h.json["status"] == "delivered" for h in seen))  # fmt: skip
    viber = [h.json for h in found if h.json["channel"] == "viber_service"]
    assert [b["status"] for b in viber] == ["submitted", "delivered"]
    assert {b["workflow"]["workflow_id"] for b in viber} == {answer.json()["workflow_id"]}
    assert [r["recipient"] for r in meta.fake.requests] == ["447700900026"]  # Graph saw one


def test_a_callback_of_another_kind_is_acknowledged_and_counted(live_world: Any) -> None:
    meta, _, _, _, server, _ = live_world
    body = json.dumps({"object": "instagram", "entry": [{"id": "1"}]}).encode()
    url = server.url + "/providers/meta/webhook"
    answer = httpx.post(url, content=body, headers={"X-Hub-Signature-256": meta.fake.sign(body)})
    assert (answer.status_code, answer.text) == (200, "EVENT_RECEIVED")
    metrics = httpx.get(server.url + "/metrics").text
    assert 'chatapp_provider_callbacks_total{outcome="unknown_object",provider="meta"} 1.0' in (
        metrics)  # fmt: skip


def test_statuses_of_one_message_in_one_callback_apply_once_each(live_world: Any) -> None:
    """Delivered, read, then delivered again for one wamid, in one body and in a replay of it
    at the same moment: the application gets delivered and read once each, in order."""
    meta, _, hooks, live, _, _ = live_world
    meta.fake.statuses = False  # this test sends the statuses itself
    sent = send(live, "whatsapp", "447700900123")
    assert _final(hooks, sent, "submitted") == ["submitted"]
    [request] = [r for r in meta.fake.requests if r["method"] == "POST"]
    [wamid] = meta.fake.sent_ids  # the one message it took
    statuses = [{"id": wamid, "status": status, "timestamp": "1700000000",
                 "recipient_id": "447700900123"} for status in ("delivered", "read", "delivered")]  # fmt: skip
    value = {"messaging_product": "whatsapp", "statuses": statuses,
             "metadata": {"display_phone_number": NUMBER, "phone_number_id": PHONE_NUMBER_ID}}  # fmt: skip
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "waba", "changes": [{"field": "messages", "value": value}]}]}  # fmt: skip

    async def twice() -> list[Any]:
        return list(await asyncio.gather(meta.fake.post_signed(payload),
                                         meta.fake.post_signed(payload)))  # fmt: skip

    assert all(outcome.acknowledged for outcome in meta.run(twice()))
    _final(hooks, sent, "read")
    time.sleep(0.5)  # anything more would have come by now
    assert hooks.statuses(sent) == ["submitted", "delivered", "read"]
    assert request["recipient"] == "447700900123"
