"""Vonage's `vonage-messages` package, unchanged, sends through the server over HTTPS, with an
application's JWT and with Basic; the webhooks that follow are checked like every other."""

from __future__ import annotations

import gc
import ssl
from pathlib import Path
from typing import Any

import pytest
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_messages import Messages
from vonage_messages.models import MessengerText, RcsText, ViberText, WhatsappText

from chatapp_accounts.testing.certificates import make_certificates

from .live import AGENT, NUMBER, PAGE, fakes, live_setup, point_callbacks
from .messaging import RECIPIENT, SENDERS, check_webhook, messaging_setup, receiver
from .server import base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e


def _messages(channel: str) -> Any:
    to, sender = RECIPIENT[channel], SENDERS[channel]
    model = {"messenger": MessengerText, "whatsapp": WhatsappText, "viber_service": ViberText,
             "rcs": RcsText}[channel]  # fmt: skip
    return model(to=to, from_=sender, text=f"sdk says hi on {channel}", client_ref="sdk")


def test_vonage_messages_sdk_sends_with_jwt_and_basic(
    db_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    env = base_env(**db_env)
    creds = new_tenant(env)
    with (
        receiver() as hooks,
        running_server(env, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server,
    ):
        host = server.url.removeprefix("http://")
        setup = messaging_setup(server, env, creds, hooks.url, base_url=f"https://{host}",
                                verify=ssl.create_default_context(cafile=str(ca)))  # fmt: skip
        options = HttpClientOptions(api_host=host, max_retries=0)
        private_key = setup.application["keys"]["private_key"]
        jwt_sdk = Messages(HttpClient(Auth(application_id=setup.application_id,
                                           private_key=private_key), options))  # fmt: skip
        basic_sdk = Messages(HttpClient(Auth(api_key=creds["api_key"],
                                             api_secret=creds["api_secret"]), options))  # fmt: skip
        sent = []
        for channel in SENDERS:
            for sdk in (jwt_sdk, basic_sdk):
                sent.append(sdk.send(_messages(channel)).message_uuid)
        with pytest.raises(HttpRequestError) as refused:
            jwt_sdk.send(WhatsappText(to="447700900123", from_="447700900111", text="x"))
        assert refused.value.response.status_code == 422
        assert refused.value.response.json()["title"] == "Invalid sender"
        got = hooks.wait_for(lambda seen: len(seen) >= 2 * len(sent))
        for hook in got:
            body = check_webhook(hook, creds["signature_secret"], creds["api_key"],
                                 setup.application_id)  # fmt: skip
            assert body["client_ref"] == "sdk"
        for message_uuid in sent:
            assert hooks.statuses(message_uuid) == ["submitted", "delivered"]
        del jwt_sdk, basic_sdk
        gc.collect()


def test_vonage_messages_sdk_in_live_mode_sees_the_same_webhooks(
    db_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same application code, the server in live mode with the fakes standing in for Meta
    and Google: the SDK's sends reach the providers and the application gets the webhooks
    Vonage would send (submitted, then delivered from the providers' signed callbacks)."""
    ca, cert, key = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    trusted = ssl.create_default_context(cafile=str(ca))  # the fakes' callbacks to the server
    with fakes(tmp_path, trusted) as (meta, rbm, settings), receiver() as hooks:
        env = base_env(**db_env, **settings)
        creds = new_tenant(env)
        tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
        with running_server(env, *tls) as server:
            host = server.url.removeprefix("http://")
            point_callbacks(meta, rbm, server, f"https://{host}")
            live = live_setup(server, env, creds, hooks.url, base_url=f"https://{host}",
                              verify=ssl.create_default_context(cafile=str(ca)))  # fmt: skip
            options = HttpClientOptions(api_host=host, max_retries=0)
            sdk = Messages(HttpClient(Auth(application_id=live.application_id,
                                           private_key=live.private_key), options))  # fmt: skip
            sent = [
                sdk.send(
                    WhatsappText(to="447700900123", from_=NUMBER, text="hi", client_ref="sdk")
                ),
                sdk.send(MessengerText(to="psid-1", from_=PAGE, text="hi", client_ref="sdk")),
                sdk.send(RcsText(to="447700900124", from_=AGENT, text="hi", client_ref="sdk")),
            ]
            got = hooks.wait_for(lambda seen: len(seen) >= 2 * len(sent))
            for hook in got:
                body = check_webhook(hook, creds["signature_secret"], creds["api_key"],
                                     live.application_id)  # fmt: skip
                assert body["client_ref"] == "sdk"
            for answer in sent:
                assert hooks.statuses(answer.message_uuid) == ["submitted", "delivered"]
            assert {r["product"] for r in meta.fake.requests} == {"whatsapp", "messenger"}
            assert [r["message_id"] for r in rbm.fake.requests] == [sent[2].message_uuid]
            del sdk
            gc.collect()
