"""The loopback fakes of Meta's Graph API and Google's RBM (chatapp_accounts.fakes) answer as the
providers do and sign their callbacks as the providers do: each fake is started on a free
loopback port in the test's own event loop, driven with aiohttp, and its callbacks land in a
small aiohttp receiver whose checks are the app's own (security/callbacks.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from chatapp_accounts.fakes import main
from chatapp_accounts.fakes.meta import INJECTIONS as META_INJECTIONS
from chatapp_accounts.fakes.meta import GraphError, MetaFake
from chatapp_accounts.fakes.rbm import INJECTIONS as RBM_INJECTIONS
from chatapp_accounts.fakes.rbm import SCOPE, GoogleError, RbmFake
from chatapp_accounts.security.callbacks import (
    meta_handshake,
    meta_signature_valid,
    rbm_setup_secret,
    rbm_signature_valid,
)

APP_SECRET = "test-app-secret"
CLIENT_TOKEN = "test-client-token"
VERIFY_TOKEN = "test-verify-token"
TOKEN = "EAAB-page-token-never-printed"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Each test's scenario in an event loop of its own, where its fakes start and stop."""
    asyncio.run(scenario())


# -- a callback receiver -------------------------------------------------------------------


@dataclass
class Hook:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers the statuses queued in `answers` (then 200). A GET is
    Meta's handshake, a POST `{"clientToken","secret"}` RBM's set-up, each checked with the
    app's own functions."""

    hooks: list[Hook] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.hooks.append(Hook(request.method, request.path_qs, dict(request.headers), body))
        if request.method == "GET":
            q = request.query
            challenge = meta_handshake(
                q.get("hub.mode"), q.get("hub.verify_token"), q.get("hub.challenge"), VERIFY_TOKEN
            )
            return web.Response(status=403) if challenge is None else web.Response(text=challenge)
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict) and "clientToken" in parsed:
            secret = rbm_setup_secret(parsed.get("clientToken"), parsed.get("secret"), CLIENT_TOKEN)
            return web.Response(status=403) if secret is None else web.Response(text=secret)
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def posts(self) -> list[Hook]:
        return [h for h in self.hooks if h.method == "POST"]


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


Fake = TypeVar("Fake", MetaFake, RbmFake)


@asynccontextmanager
async def started(
    make: Callable[[str], Fake],
) -> AsyncIterator[tuple[Fake, Receiver, aiohttp.ClientSession]]:
    """The fake `make(callback_url)` started, its callbacks going to a receiver, and a client."""
    async with receiver() as hooks, aiohttp.ClientSession() as client:
        fake = make(hooks.url)
        await fake.start("127.0.0.1", 0)
        try:
            yield fake, hooks, client
        finally:
            await fake.stop()


def meta_fake(
    **options: Any,
) -> AbstractAsyncContextManager[tuple[MetaFake, Receiver, aiohttp.ClientSession]]:
    return started(lambda url: MetaFake(callback_url=url, app_secret=APP_SECRET, **options))


def rbm_fake(
    **options: Any,
) -> AbstractAsyncContextManager[tuple[RbmFake, Receiver, aiohttp.ClientSession]]:
    return started(lambda url: RbmFake(callback_url=url, client_token=CLIENT_TOKEN, **options))


async def call(
    client: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes]:
    async with client.request(method, url, **kwargs) as got:
        return got.status, dict(got.headers), await got.read()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wa_text(to: str, text: str = "hi") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "text", "text": {"body": text}}  # fmt: skip


def fb_text(psid: str) -> dict[str, Any]:
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}


def signed_meta(hook: Hook) -> Any:
    assert meta_signature_valid(hook.body, hook.headers.get("X-Hub-Signature-256"), APP_SECRET)
    assert hook.headers["Content-Type"].startswith("application/json")
    return hook.json


def rbm_event(hook: Hook) -> dict[str, Any]:
    push = hook.json
    assert set(push) == {"message", "subscription"}
    assert set(push["message"]) == {"data", "messageId", "publishTime"}
    data = push["message"]["data"]
    assert rbm_signature_valid(data, hook.headers.get("X-Goog-Signature"), CLIENT_TOKEN)
    assert not rbm_signature_valid(data, hook.headers.get("X-Goog-Signature"), "other")
    event: dict[str, Any] = json.loads(base64.b64decode(data))
    return event


# -- Meta: WhatsApp ------------------------------------------------------------------------


def test_whatsapp_send_answers_as_the_cloud_api_and_signs_sent_then_delivered() -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):
            url = f"{fake.graph_url}/1065/messages"
            status, headers, body = await call(
                client, "POST", url, json=wa_text("447700900123"), headers=bearer()
            )
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            answer = json.loads(body)
            wamid = answer["messages"][0]["id"]
            assert wamid.startswith("wamid.")
            assert answer == {"messaging_product": "whatsapp",
                              "contacts": [{"input": "447700900123", "wa_id": "447700900123"}],
                              "messages": [{"id": wamid}]}  # fmt: skip
            await fake.drain()
            posts = hooks.posts()
            assert [h.path for h in posts] == ["/hook", "/hook"]
            sent, delivered = (signed_meta(h) for h in posts)
            for payload, name in ((sent, "sent"), (delivered, "delivered")):
                assert payload["object"] == "whatsapp_business_account"
                (entry,) = payload["entry"]
                assert entry["id"] == "waba-1065"
                (change,) = entry["changes"]
                assert change["field"] == "messages"
                value = change["value"]
                assert value["messaging_product"] == "whatsapp"
                assert value["metadata"] == {"display_phone_number": "1065",
                                             "phone_number_id": "1065"}  # fmt: skip
                (st,) = value["statuses"]
                assert st["id"] == wamid and st["status"] == name
                assert st["recipient_id"] == "447700900123"
                assert (
                    isinstance(st["timestamp"], str) and abs(int(st["timestamp"]) - time.time()) < 5
                )
            assert fake.callbacks_sent == 2 and fake.callbacks_acknowledged == 2
            assert fake.stats()["callbacks_failed"] == 0
            assert fake.requests[0]["token"] is True and fake.requests[0]["token_via"] == "header"

    run(scenario)


def test_whatsapp_read_receipts_waba_ids_and_opaque_data() -> None:
    async def scenario() -> None:
        async with meta_fake(read_receipts=True, waba_ids={"77": "WABA-9"}) as (
            fake,
            hooks,
            client,
        ):
            fake.set_number("77", display_phone_number="15550001111")
            body = {**wa_text("447700900124"), "biz_opaque_callback_data": "ref-1"}
            await call(client, "POST", f"{fake.graph_url}/77/messages", json=body, headers=bearer())
            await fake.drain()
            payloads = [signed_meta(h) for h in hooks.posts()]
            statuses = [p["entry"][0]["changes"][0]["value"]["statuses"][0] for p in payloads]
            assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
            assert all(s["biz_opaque_callback_data"] == "ref-1" for s in statuses)
            assert {p["entry"][0]["id"] for p in payloads} == {"WABA-9"}
            meta = payloads[0]["entry"][0]["changes"][0]["value"]["metadata"]
            assert meta == {"display_phone_number": "15550001111", "phone_number_id": "77"}

    run(scenario)


def test_mark_as_read_answers_success_and_sends_nothing() -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):
            status, _, body = await call(
                client, "POST", f"{fake.graph_url}/1065/messages", headers=bearer(),
                json={"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"},
            )  # fmt: skip
            assert (status, json.loads(body)) == (200, {"success": True})
            await fake.drain()
            assert hooks.posts() == []

    run(scenario)


def test_failed_status_inbound_and_unicode_are_signed_on_the_escaped_bytes() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False) as (fake, hooks, client):
            _, _, body = await call(client, "POST", f"{fake.graph_url}/1065/messages",
                                    json=wa_text("447700900125"), headers=bearer())  # fmt: skip
            wamid = json.loads(body)["messages"][0]["id"]
            await fake.drain()
            assert hooks.posts() == []  # statuses off
            failed = await fake.send_status(wamid, "failed")
            assert failed.acknowledged and failed.status == 200 and failed.tries == 1
            st = signed_meta(hooks.posts()[0])["entry"][0]["changes"][0]["value"]["statuses"][0]
            assert st["status"] == "failed" and st["errors"][0]["code"] == 131026
            assert st["errors"][0]["error_data"]["details"]

            inbound = await fake.inbound_whatsapp(
                "1065", "447700900999", "äöå ✓", context_wamid=wamid, profile_name="Zoë"
            )
            raw = hooks.posts()[1].body
            assert raw.isascii() and b"\\u00e4\\u00f6\\u00e5 \\u2713" in raw
            value = signed_meta(hooks.posts()[1])["entry"][0]["changes"][0]["value"]
            assert value["contacts"] == [{"profile": {"name": "Zoë"}, "wa_id": "447700900999"}]
            (message,) = value["messages"]
            assert message["id"] == inbound.id and message["id"].startswith("wamid.")
            assert message["from"] == "447700900999" and message["type"] == "text"
            assert message["text"] == {"body": "äöå ✓"}
            assert message["context"] == {"from": "1065", "id": wamid}

    run(scenario)


# -- Meta: Messenger -----------------------------------------------------------------------


def test_messenger_send_with_a_query_token_and_its_delivery_watermark() -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):
            before = int(time.time() * 1000)
            status, _, body = await call(
                client, "POST", f"{fake.base_url}/v19.0/me/messages",
                params={"access_token": TOKEN}, json=fb_text("psid-1"),
            )  # fmt: skip
            answer = json.loads(body)
            assert status == 200 and set(answer) == {"recipient_id", "message_id"}
            assert answer["recipient_id"] == "psid-1" and answer["message_id"].startswith("m_")
            await fake.drain()
            (hook,) = hooks.posts()
            payload = signed_meta(hook)
            assert payload["object"] == "page"
            (entry,) = payload["entry"]
            assert entry["id"] == "me" and isinstance(entry["time"], int)
            (event,) = entry["messaging"]
            assert event["sender"] == {"id": "psid-1"} and event["recipient"] == {"id": "me"}
            assert event["delivery"]["mids"] == [answer["message_id"]]
            assert before <= event["delivery"]["watermark"] <= int(time.time() * 1000)

            # what was received is listed without the token, over HTTP too
            _, _, listed = await call(client, "GET", f"{fake.base_url}/_fake/requests")
            assert TOKEN.encode() not in listed
            (record,) = json.loads(listed)["requests"]
            assert record["path"] == "/v19.0/me/messages" and record["token"] is True
            assert record["token_via"] == "query" and record["status"] == 200
            assert record["product"] == "messenger" and record["recipient"] == "psid-1"

    run(scenario)


def test_tokens_in_bodies_are_masked_and_form_bodies_accepted() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False) as (fake, _hooks, client):
            status, _, _ = await call(client, "POST", f"{fake.graph_url}/page-1/messages",
                                      json={**fb_text("psid-2"), "access_token": TOKEN})  # fmt: skip
            assert status == 200
            form = {"recipient": json.dumps({"id": "psid-3"}), "messaging_type": "RESPONSE",
                    "message": json.dumps({"text": "hi"}), "access_token": TOKEN}  # fmt: skip
            status, _, body = await call(client, "POST", f"{fake.graph_url}/page-1/messages",
                                         data=form)  # fmt: skip
            assert status == 200 and json.loads(body)["recipient_id"] == "psid-3"
            first, second = fake.requests
            assert first["token_via"] == "body" and first["body"]["access_token"] == "***"
            assert second["token_via"] == "form" and second["body"]["recipient"] == {"id": "psid-3"}
            assert TOKEN not in json.dumps(fake.requests)

    run(scenario)


def test_messenger_read_receipts_and_inbound_reply() -> None:
    async def scenario() -> None:
        async with meta_fake(read_receipts=True) as (fake, hooks, client):
            await call(client, "POST", f"{fake.graph_url}/page-1/messages",
                       json=fb_text("psid-4"), headers=bearer())  # fmt: skip
            await fake.drain()
            kinds = [next(k for k in ("delivery", "read") if k in signed_meta(h)["entry"][0]
                          ["messaging"][0]) for h in hooks.posts()]  # fmt: skip
            assert kinds == ["delivery", "read"]
            outcome = await fake.inbound_messenger("page-1", "psid-4", "hello", reply_to_mid="m_1")
            event = signed_meta(hooks.posts()[-1])["entry"][0]["messaging"][0]
            assert event["sender"] == {"id": "psid-4"} and event["recipient"] == {"id": "page-1"}
            assert event["message"] == {"mid": outcome.id, "text": "hello",
                                        "reply_to": {"mid": "m_1"}}  # fmt: skip

    run(scenario)


# -- Meta: tokens, throttles, injection ----------------------------------------------------


def test_graph_token_errors() -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):
            url = f"{fake.graph_url}/page-1/messages"
            status, _, body = await call(client, "POST", url, json=fb_text("psid-1"))
            error = json.loads(body)["error"]
            assert status == 400 and error["code"] == 104 and error["type"] == "OAuthException"
            assert set(error) == {"message", "type", "code", "fbtrace_id"}
            assert fake.requests[0]["token"] is False

            fake.expire_token(TOKEN)
            status, headers, body = await call(client, "POST", url, json=fb_text("psid-1"),
                                               headers=bearer())  # fmt: skip
            error = json.loads(body)["error"]
            assert status == 400 and (error["code"], error["error_subcode"]) == (190, 463)
            assert error["message"].startswith("Error validating access token: Session has expired")
            assert headers["WWW-Authenticate"].startswith(
                'OAuth "Facebook Platform" "invalid_token"'
            )
            status, _, body = await call(client, "POST", f"{fake.graph_url}/1065/messages",
                                         json=wa_text("447700900123"), headers=bearer())  # fmt: skip
            assert status == 401 and json.loads(body)["error"]["code"] == 190
            status, _, _ = await call(client, "POST", url, json=fb_text("psid-1"),
                                      headers=bearer("another"))  # fmt: skip
            assert status == 200
            await fake.drain()
            assert len(hooks.posts()) == 1  # the refused sends cause no callback
            assert TOKEN not in json.dumps(fake.requests)

        async with meta_fake(valid_tokens=[TOKEN]) as (fake, _, client):
            status, _, body = await call(client, "POST", f"{fake.graph_url}/p/messages",
                                         json=fb_text("psid-1"), headers=bearer("nope"))  # fmt: skip
            assert status == 400 and json.loads(body)["error"]["code"] == 190

    run(scenario)


def test_throttle_slows_one_account_only_then_lifts() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False) as (fake, _hooks, client):
            fake.throttle("1065", 30)
            status, _, body = await call(client, "POST", f"{fake.graph_url}/1065/messages",
                                         json=wa_text("447700900123"), headers=bearer())  # fmt: skip
            error = json.loads(body)["error"]
            assert status == 429 and error["code"] == 130429
            assert error["error_data"] == {"messaging_product": "whatsapp",
                                           "details": "Cloud API message throughput has been reached."}  # fmt: skip
            status, _, _ = await call(client, "POST", f"{fake.graph_url}/2000/messages",
                                      json=wa_text("447700900123"), headers=bearer())  # fmt: skip
            assert status == 200
            # over HTTP, the page's throttle
            status, _, _ = await call(client, "POST", f"{fake.base_url}/_fake/throttle",
                                      json={"account_id": "page-1", "seconds": 30})  # fmt: skip
            assert status == 200
            status, _, body = await call(client, "POST", f"{fake.graph_url}/page-1/messages",
                                         json=fb_text("psid-1"), headers=bearer())  # fmt: skip
            assert status == 429 and json.loads(body)["error"]["code"] == 613
            fake.throttle("page-1", 0)
            status, _, _ = await call(client, "POST", f"{fake.graph_url}/page-1/messages",
                                      json=fb_text("psid-1"), headers=bearer())  # fmt: skip
            assert status == 200

    run(scenario)


META_ERRORS = [
    (ending, product, answer)
    for ending, products in META_INJECTIONS.items()
    for product, answer in products.items()
    if isinstance(answer, GraphError)
]


@pytest.mark.parametrize(("ending", "product", "expected"), META_ERRORS,
                         ids=[f"{e}-{p}" for e, p, _ in META_ERRORS])  # fmt: skip
def test_meta_injected_errors(ending: str, product: str, expected: GraphError) -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):
            recipient = "4477009" + ending
            body = wa_text(recipient) if product == "whatsapp" else fb_text(recipient)
            status, headers, raw = await call(client, "POST", f"{fake.graph_url}/acc/messages",
                                              json=body, headers=bearer())  # fmt: skip
            assert status == expected.http_status
            assert headers["Content-Type"].startswith("application/json")
            error = json.loads(raw)["error"]
            assert error["type"] == "OAuthException" and error["code"] == expected.code
            assert error["message"] == expected.message and error["fbtrace_id"]
            assert error.get("error_subcode") == expected.subcode
            if product == "whatsapp" and expected.details is not None:
                assert error["error_data"] == {"messaging_product": "whatsapp",
                                               "details": expected.details}  # fmt: skip
            else:
                assert "error_data" not in error
            await fake.drain()
            assert hooks.posts() == []

    run(scenario)


def test_the_documented_meta_table() -> None:
    wa = {e: (a.http_status, a.code) for e, p in META_INJECTIONS.items()
          for k, a in p.items() if k == "whatsapp" and isinstance(a, GraphError)}  # fmt: skip
    assert wa == {"0190": (401, 190), "0429": (429, 130429), "0056": (429, 131056),
                  "0026": (400, 131026), "0047": (400, 131047), "0132": (404, 132001),
                  "0049": (400, 131049), "0120": (503, 131016), "0500": (500, 131000)}  # fmt: skip
    fb = {e: (a.http_status, a.code, a.subcode) for e, p in META_INJECTIONS.items()
          for k, a in p.items() if k == "messenger" and isinstance(a, GraphError)}  # fmt: skip
    assert fb == {"0190": (400, 190, 463), "0429": (429, 613, None), "0026": (400, 100, 2018001),
                  "0047": (400, 10, 2018278), "0049": (400, 551, 1545041),
                  "0120": (500, 1200, 2018024), "0500": (500, 2, None)}  # fmt: skip
    assert not {"0001", "0002", "0003"} & (set(META_INJECTIONS) | set(RBM_INJECTIONS))


@pytest.mark.parametrize("product", ["whatsapp", "messenger"])
def test_meta_injected_transport_answers(product: str) -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, hooks, client):

            def body(ending: str) -> dict[str, Any]:
                recipient = "4477009" + ending
                return wa_text(recipient) if product == "whatsapp" else fb_text(recipient)

            url = f"{fake.graph_url}/acc/messages"
            status, headers, raw = await call(
                client, "POST", url, json=body("0502"), headers=bearer()
            )
            assert status == 502 and headers["Content-Type"].startswith("text/html")
            assert raw.startswith(b"<!DOCTYPE html>")
            status, _, raw = await call(client, "POST", url, json=body("0503"), headers=bearer())
            assert (status, raw) == (503, b"")
            status, _, raw = await call(client, "POST", url, json=body("0200"), headers=bearer())
            answer = json.loads(raw)
            if product == "whatsapp":
                assert status == 200 and answer["messages"] == [] and answer["contacts"]
            else:
                assert (status, answer) == (200, {"recipient_id": "44770090200"})
            status, _, raw = await call(client, "POST", url, json=body("0300"), headers=bearer())
            assert status == 200
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await call(client, "POST", url, json=body("0999"), headers=bearer(),
                           timeout=aiohttp.ClientTimeout(total=0.3))  # fmt: skip
            assert time.monotonic() - started >= 0.3
            await fake.drain()
            assert hooks.posts() == []  # no id, no callbacks (0300 included)
            assert fake.requests[-1]["status"] is None  # the hanging one

    run(scenario)


# -- Meta: callbacks' retries, latency, handshake, HTTP control ----------------------------


def test_meta_callbacks_are_retried_three_times() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False, callback_backoff=0.01) as (fake, hooks, _client):
            hooks.answers = [500, 503]
            outcome = await fake.inbound_messenger("page-1", "psid-1", "hi")
            assert (outcome.status, outcome.tries, outcome.acknowledged) == (200, 3, True)
            assert len({h.body for h in hooks.posts()}) == 1  # the same bytes each time
            hooks.answers = [500, 500, 500]
            outcome = await fake.inbound_messenger("page-1", "psid-1", "hi")
            assert (outcome.status, outcome.tries, outcome.acknowledged) == (500, 3, False)
            assert fake.stats() == {"requests": 0, "callbacks_sent": 2, "callback_attempts": 6,
                                    "callbacks_acknowledged": 1, "callbacks_failed": 1,
                                    "pending_callbacks": 0}  # fmt: skip

    run(scenario)


def test_meta_latency_and_webhook_handshake() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False) as (fake, hooks, client):
            fake.set_latency(0.25)
            started = time.monotonic()
            status, _, _ = await call(client, "POST", f"{fake.graph_url}/p/messages",
                                      json=fb_text("psid-1"), headers=bearer())  # fmt: skip
            assert status == 200 and time.monotonic() - started >= 0.25
            assert await fake.verify_webhook(VERIFY_TOKEN, "1158201444") == (200, "1158201444")
            assert (await fake.verify_webhook("wrong"))[0] == 403
            query = hooks.hooks[0].path
            assert "hub.mode=subscribe" in query and "hub.challenge=1158201444" in query

    run(scenario)


def test_meta_control_over_http() -> None:
    async def scenario() -> None:
        async with meta_fake(statuses=False) as (fake, hooks, client):
            base = f"{fake.base_url}/_fake"
            status, _, body = await call(client, "POST", f"{base}/inbound/whatsapp", json={
                "phone_number_id": "1065", "from": "447700900999", "text": "yo"})  # fmt: skip
            outcome = json.loads(body)
            assert status == 200 and outcome["status"] == 200 and outcome["acknowledged"] is True
            assert outcome["id"].startswith("wamid.")
            await call(client, "POST", f"{base}/statuses", json={"enabled": True, "read": True})
            await call(client, "POST", f"{base}/numbers", json={"phone_number_id": "1065",
                                                                  "waba_id": "W1"})  # fmt: skip
            _, _, body = await call(client, "POST", f"{fake.graph_url}/1065/messages",
                                    json=wa_text("447700900123"), headers=bearer())  # fmt: skip
            wamid = json.loads(body)["messages"][0]["id"]
            await fake.drain()
            status, _, body = await call(client, "POST", f"{base}/status",
                                         json={"wamid": wamid, "status": "failed",
                                               "errors": [{"code": 131047}]})  # fmt: skip
            assert status == 200 and json.loads(body)["acknowledged"] is True
            st = signed_meta(hooks.posts()[-1])["entry"][0]["changes"][0]["value"]["statuses"][0]
            assert st["errors"] == [{"code": 131047}]
            assert signed_meta(hooks.posts()[-1])["entry"][0]["id"] == "W1"
            _, _, stats = await call(client, "GET", f"{base}/stats")
            assert (
                json.loads(stats)["callbacks_sent"] == 5
            )  # inbound, sent, delivered, read, failed
            _, _, listed = await call(client, "GET", f"{base}/callbacks")
            assert len(json.loads(listed)["callbacks"]) == 5
            status, _, body = await call(client, "POST", f"{base}/throttle", json={"seconds": 1})
            assert status == 400 and "account_id" in json.loads(body)["error"]
            await call(client, "DELETE", f"{base}/requests")
            assert fake.requests == []

    run(scenario)


# -- RBM: tokens ---------------------------------------------------------------------------


def assertion(fake: RbmFake, **claims: Any) -> str:
    info = fake.service_account_info()
    now = int(time.time())
    body = {"iss": info["client_email"], "scope": SCOPE, "aud": info["token_uri"],
            "iat": now, "exp": now + 3600, **claims}  # fmt: skip
    return jwt.encode(body, info["private_key"], algorithm="RS256",
                      headers={"kid": info["private_key_id"]})  # fmt: skip


async def get_token(fake: RbmFake, client: aiohttp.ClientSession, jwt_: str) -> tuple[int, Any]:
    status, _, body = await call(client, "POST", fake.token_url,
                                 data={"grant_type": GRANT, "assertion": jwt_})  # fmt: skip
    return status, json.loads(body)


def test_rbm_service_account_and_token_exchange() -> None:
    async def scenario() -> None:
        async with rbm_fake() as (fake, _hooks, client):
            info = fake.service_account_info()
            assert info["type"] == "service_account"
            assert info["token_uri"] == fake.token_url == f"{fake.base_url}/token"
            assert info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
            assert {"client_email", "private_key_id", "project_id", "client_id"} <= set(info)

            status, answer = await get_token(fake, client, assertion(fake))
            assert status == 200 and set(answer) == {"access_token", "expires_in", "token_type"}
            assert answer["expires_in"] == 3599 and answer["token_type"] == "Bearer"
            assert answer["access_token"].startswith("ya29.")

            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.encode({"iss": info["client_email"], "scope": SCOPE,
                                 "aud": fake.token_url, "iat": int(time.time()),
                                 "exp": int(time.time()) + 60}, other, algorithm="RS256")  # fmt: skip
            now = int(time.time())
            refusals = {
                "wrong aud": (assertion(fake, aud="https://oauth2.googleapis.com/token"),
                              "invalid_grant", "Failed audience check"),
                "expired": (assertion(fake, iat=now - 7200, exp=now - 3600),
                            "invalid_grant", "short-lived"),
                "too long": (assertion(fake, exp=now + 7200), "invalid_grant", "short-lived"),
                "wrong scope": (assertion(fake, scope="https://www.googleapis.com/auth/cloud-platform"),
                                "invalid_scope", "Invalid OAuth scope"),
                "wrong iss": (assertion(fake, iss="x@y.iam.gserviceaccount.com"),
                              "invalid_grant", "account not found"),
                "forged": (forged, "invalid_grant", "Invalid JWT Signature."),
                "garbage": ("not.a.jwt", "invalid_grant", "Invalid JWT Signature."),
            }  # fmt: skip
            for name, (jwt_, error, words) in refusals.items():
                status, answer = await get_token(fake, client, jwt_)
                assert status == 400, name
                assert set(answer) == {"error", "error_description"}, name
                assert answer["error"] == error and words in answer["error_description"], name
            assert "The right audience is " + fake.token_url in (
                await get_token(fake, client, assertion(fake, aud="x")))[1]["error_description"]  # fmt: skip
            status, _, body = await call(client, "POST", fake.token_url,
                                         data={"grant_type": "client_credentials"})  # fmt: skip
            assert status == 400 and json.loads(body)["error"] == "unsupported_grant_type"
            assert fake.tokens_issued == 1 and fake.stats()["tokens_issued"] == 1

    run(scenario)


def test_rbm_tokens_expire() -> None:
    async def scenario() -> None:
        async with rbm_fake(token_expires_in=1, events=False) as (fake, _hooks, client):
            _, answer = await get_token(fake, client, assertion(fake))
            assert answer["expires_in"] == 1
            url = f"{fake.base_url}/v1/phones/+447700900123/agentMessages"
            params = {"messageId": "m-1", "agentId": "agent-1"}
            body = {"contentMessage": {"text": "hi"}}
            status, _, _ = await call(client, "POST", url, params=params, json=body,
                                      headers=bearer(answer["access_token"]))  # fmt: skip
            assert status == 200
            await asyncio.sleep(1.1)
            status, headers, raw = await call(client, "POST", url, json=body,
                                              params={**params, "messageId": "m-2"},
                                              headers=bearer(answer["access_token"]))  # fmt: skip
            assert status == 401 and json.loads(raw)["error"]["status"] == "UNAUTHENTICATED"
            assert headers["WWW-Authenticate"].startswith("Bearer")
            fresh = fake.issue_token()
            fake.expire_tokens()
            status, _, _ = await call(client, "POST", url, json=body, headers=bearer(fresh),
                                      params={**params, "messageId": "m-3"})  # fmt: skip
            assert status == 401

    run(scenario)


# -- RBM: sending, events, revoking --------------------------------------------------------


def test_rbm_send_echoes_the_agent_message_and_signs_delivered() -> None:
    async def scenario() -> None:
        async with rbm_fake(read_receipts=True) as (fake, hooks, client):
            _, answer = await get_token(fake, client, assertion(fake))
            token = answer["access_token"]
            url = f"{fake.base_url}/v1/phones/+447700900123/agentMessages"
            params = {"messageId": "4f0c7d3e-uuid", "agentId": "agent-1"}
            message = {"contentMessage": {"text": "hé", "suggestions": [
                {"reply": {"text": "Yes", "postbackData": "yes"}}]},
                "messageTrafficType": "TRANSACTION", "ttl": "600s"}  # fmt: skip
            status, _, raw = await call(client, "POST", url, params=params, json=message,
                                        headers=bearer(token))  # fmt: skip
            answer = json.loads(raw)
            assert status == 200
            send_time = answer.pop("sendTime")
            assert send_time.endswith("Z") and "T" in send_time
            assert answer == {**message, "name": "phones/+447700900123/agentMessages/4f0c7d3e-uuid"}

            status, _, raw = await call(client, "POST", url, params=params, json=message,
                                        headers=bearer(token))  # fmt: skip
            assert status == 409
            assert json.loads(raw) == {"error": {"code": 409, "status": "ALREADY_EXISTS",
                                                 "message": "Requested entity already exists"}}  # fmt: skip
            status, _, raw = await call(client, "POST", url, params=params, json=message)
            assert status == 401 and json.loads(raw)["error"]["code"] == 401

            await fake.drain()
            events = [rbm_event(h) for h in hooks.posts()]
            assert [e["eventType"] for e in events] == ["DELIVERED", "READ"]
            for event in events:
                assert set(event) == {"senderPhoneNumber", "eventType", "eventId", "messageId",
                                      "agentId", "sendTime"}  # fmt: skip
                assert event["senderPhoneNumber"] == "+447700900123"
                assert event["messageId"] == "4f0c7d3e-uuid" and event["agentId"] == "agent-1"
            assert events[0]["eventId"] != events[1]["eventId"]
            assert fake.message_state("+447700900123", "4f0c7d3e-uuid") == {
                "agent_id": "agent-1", "delivered": True, "revoked": False}  # fmt: skip
            _, _, listed = await call(client, "GET", f"{fake.base_url}/_fake/requests")
            assert token.encode() not in listed
            assert [r["status"] for r in json.loads(listed)["requests"]] == [200, 409, 401]
            assert [r["token"] for r in fake.requests] == [True, True, False]

    run(scenario)


def test_rbm_revoke() -> None:
    async def scenario() -> None:
        async with rbm_fake() as (fake, _hooks, client):
            token = fake.issue_token()
            base = f"{fake.base_url}/v1/phones/+447700900300/agentMessages"
            status, _, _ = await call(client, "POST", base, json={"contentMessage": {"text": "x"}},
                                      params={"messageId": "u-1", "agentId": "a"},
                                      headers=bearer(token))  # fmt: skip
            assert status == 200  # ...0300: taken, never delivered
            await fake.drain()
            assert fake.callbacks_sent == 0
            revoke = f"{base}/u-1"
            status, _, raw = await call(client, "DELETE", revoke, params={"agentId": "a"},
                                        headers=bearer(token))  # fmt: skip
            assert (status, json.loads(raw)) == (200, {})
            status, _, raw = await call(client, "DELETE", revoke, params={"agentId": "a"},
                                        headers=bearer(token))  # fmt: skip
            assert status == 404 and json.loads(raw)["error"]["status"] == "NOT_FOUND"
            status, _, _ = await call(client, "DELETE", f"{base}/unknown", params={"agentId": "a"},
                                      headers=bearer(token))  # fmt: skip
            assert status == 404
            status, _, _ = await call(client, "DELETE", revoke, params={"agentId": "a"})
            assert status == 401
            # a delivered message cannot be revoked
            delivered = f"{fake.base_url}/v1/phones/+447700900124/agentMessages"
            await call(client, "POST", delivered, json={"contentMessage": {"text": "x"}},
                       params={"messageId": "u-2", "agentId": "a"}, headers=bearer(token))  # fmt: skip
            await fake.drain()
            status, _, _ = await call(client, "DELETE", f"{delivered}/u-2", params={"agentId": "a"},
                                      headers=bearer(token))  # fmt: skip
            assert status == 404

    run(scenario)


RBM_ERRORS = [(e, a) for e, a in RBM_INJECTIONS.items() if isinstance(a, GoogleError)]


@pytest.mark.parametrize(("ending", "expected"), RBM_ERRORS, ids=[e for e, _ in RBM_ERRORS])
def test_rbm_injected_errors(ending: str, expected: GoogleError) -> None:
    async def scenario() -> None:
        async with rbm_fake() as (fake, hooks, client):
            url = f"{fake.base_url}/v1/phones/+4477009{ending}/agentMessages"
            status, headers, raw = await call(
                client, "POST", url, params={"messageId": "u", "agentId": "a"},
                json={"contentMessage": {"text": "x"}}, headers=bearer(fake.issue_token()),
            )  # fmt: skip
            assert status == expected.code
            assert headers["Content-Type"].startswith("application/json")
            assert json.loads(raw) == {"error": {"code": expected.code, "message": expected.message,
                                                 "status": expected.status}}  # fmt: skip
            await fake.drain()
            assert hooks.posts() == []

    run(scenario)


def test_the_documented_rbm_table_and_transport_answers() -> None:
    assert {e: (a.code, a.status) for e, a in RBM_ERRORS} == {
        "0404": (404, "NOT_FOUND"), "0400": (400, "INVALID_ARGUMENT"),
        "0403": (403, "PERMISSION_DENIED"), "0429": (429, "RESOURCE_EXHAUSTED"),
        "0500": (500, "INTERNAL")}  # fmt: skip

    async def scenario() -> None:
        async with rbm_fake() as (fake, _hooks, client):
            token = fake.issue_token()

            async def send(ending: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
                return await call(client, "POST",
                                  f"{fake.base_url}/v1/phones/+4477009{ending}/agentMessages",
                                  params={"messageId": "u", "agentId": "a"},
                                  json={"contentMessage": {"text": "x"}}, headers=bearer(token),
                                  **kwargs)  # fmt: skip

            status, headers, raw = await send("0502")
            assert status == 502 and headers["Content-Type"].startswith("text/html")
            assert (await send("0503"))[::2] == (503, b"")
            with pytest.raises(TimeoutError):
                await send("0999", timeout=aiohttp.ClientTimeout(total=0.3))
            fake.throttle("a", 30)
            status, _, raw = await send("0123")
            assert status == 429 and json.loads(raw)["error"]["status"] == "RESOURCE_EXHAUSTED"
            status, _, raw = await call(client, "POST",
                                        f"{fake.base_url}/v1/phones/+447700900123/agentMessages",
                                        params={"agentId": "a"}, json={}, headers=bearer(token))  # fmt: skip
            assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"

    run(scenario)


def test_rbm_inbound_suggestions_handshake_and_retries() -> None:
    async def scenario() -> None:
        async with rbm_fake(callback_backoff=0.01) as (fake, hooks, client):
            text = await fake.inbound_text("agent-1", "447700900123", "Hellø")
            assert text.acknowledged
            event = rbm_event(hooks.posts()[0])
            assert event["senderPhoneNumber"] == "+447700900123" and event["text"] == "Hellø"
            assert event["agentId"] == "agent-1" and event["messageId"] == text.id
            assert {"eventId", "sendTime"} <= set(event)
            await fake.suggestion_response("agent-1", "+447700900123", "yes", "Yes")
            event = rbm_event(hooks.posts()[1])
            assert event["suggestionResponse"] == {"postbackData": "yes", "text": "Yes",
                                                   "type": "REPLY"}  # fmt: skip
            assert "text" not in event

            assert await fake.setup_handshake("s3cret") == "s3cret"
            assert fake.last_setup_status == 200
            assert hooks.hooks[-1].json == {"clientToken": CLIENT_TOKEN, "secret": "s3cret"}
            assert await fake.setup_handshake("s3cret", client_token="wrong") == ""
            assert fake.last_setup_status == 403

            hooks.answers = [500]
            outcome = await fake.send_event("+447700900123", "u-9", "READ", "agent-1")
            assert (outcome.tries, outcome.acknowledged) == (2, True)
            assert rbm_event(hooks.posts()[-1])["eventType"] == "READ"

            base = f"{fake.base_url}/_fake"
            status, _, raw = await call(client, "POST", f"{base}/inbound",
                                        json={"agent_id": "a", "from": "447700900123", "text": "t"})  # fmt: skip
            assert status == 200 and json.loads(raw)["acknowledged"] is True
            status, _, raw = await call(client, "POST", f"{base}/setup-handshake",
                                        json={"secret": "abc"})  # fmt: skip
            assert json.loads(raw) == {"status": 200, "body": "abc"}
            _, _, raw = await call(client, "GET", f"{base}/stats")
            stats = json.loads(raw)
            assert stats["callbacks_sent"] == 4 and stats["callback_attempts"] == 5

    run(scenario)


# -- the command -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "required"),
        (["viber", "--port", "1", "--callback-url", "http://127.0.0.1:1/"], "invalid choice"),
        (["meta", "--callback-url", "http://127.0.0.1:1/"], "--port"),
        (["meta", "--port", "70000", "--callback-url", "http://127.0.0.1:1/"], "out of range"),
        (["meta", "--port", "x", "--callback-url", "http://127.0.0.1:1/"], "not a port"),
        (["meta", "--port", "0"], "--callback-url"),
        (["meta", "--port", "0", "--callback-url", "ftp://x/"], "not an http(s) URL"),
        (["meta", "--port", "0", "--callback-url", "http://h/", "--latency-ms", "-5"], "negative"),
        (["meta", "--port", "0", "--callback-url", "http://h/", "--client-token", "t"], "rbm only"),
        (["rbm", "--port", "0", "--callback-url", "http://h/", "--app-secret", "s"], "meta only"),
    ],
)
def test_main_usage_errors_exit_2_in_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and words in err and "Traceback" not in err
    assert err.startswith("chatapp-accounts fake-provider: error: ") and err.count("\n") == 1


def _start(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    code = "import sys; from chatapp_accounts.fakes import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline()


def _interrupt(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    return process.returncode, err


def test_main_serves_meta_until_ctrl_c() -> None:
    process, line = _start(["meta", "--port", "0", "--callback-url", "http://127.0.0.1:9/hook",
                            "--app-secret", "s3cret"])  # fmt: skip
    try:
        assert line.startswith("meta fake listening on http://127.0.0.1:"), line
        assert "CHATAPP_META_GRAPH_URL=http://127.0.0.1:" in line and "/v21.0" in line
        assert "s3cret" not in line
        graph = line.split("CHATAPP_META_GRAPH_URL=")[1].split()[0]

        async def scenario() -> None:
            async with aiohttp.ClientSession() as client:
                status, _, raw = await call(client, "POST", f"{graph}/page-1/messages",
                                            json=fb_text("psid-1"), headers=bearer())  # fmt: skip
                assert status == 200 and json.loads(raw)["recipient_id"] == "psid-1"

        run(scenario)
    finally:
        code, err = _interrupt(process)
    assert code == 0 and err == "", err


def test_main_serves_rbm_and_writes_the_service_account(tmp_path: Path) -> None:
    key = tmp_path / "sa.json"
    process, line = _start(["rbm", "--port", "0", "--callback-url", "http://127.0.0.1:9/hook",
                            "--service-account-out", str(key), "--latency-ms", "5"])  # fmt: skip
    try:
        assert line.startswith("rbm fake listening on http://127.0.0.1:"), line
        assert f"CHATAPP_RBM_SERVICE_ACCOUNT_FILE={key}" in line
        assert "CHATAPP_RBM_TOKEN_URL=http://127.0.0.1:" in line
        info = json.loads(key.read_text())
        assert info["type"] == "service_account" and info["token_uri"].endswith("/token")
        assert os.stat(key).st_mode & 0o777 == 0o600
    finally:
        code, err = _interrupt(process)
    assert code == 0 and err == "", err


def test_main_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> None:
        async with meta_fake() as (fake, _hooks, _client):
            port = fake.base_url.rsplit(":", 1)[1]
            assert (
                await asyncio.to_thread(
                    main, ["meta", "--port", port, "--callback-url", "http://127.0.0.1:9/"]
                )
                == 1
            )

    run(scenario)
    _, err = capsys.readouterr()
    assert err.startswith("chatapp-accounts fake-provider: error: ") and "Traceback" not in err
