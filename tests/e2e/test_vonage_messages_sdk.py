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

from .messaging import RECIPIENT, SENDERS, check_webhook, messaging_setup, receiver
from .server import base_env, new_tenant, running_server
from .tls import make_certificates

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
