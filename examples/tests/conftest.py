"""The fixtures of this project's own, built on chatapp-accounts' plugin (`chatapp_server`,
`chatapp`, `webhook_receiver`: loaded from the installed package, nothing to import)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from app.sending import messages_client
from app.webhooks import InboundHandler


@pytest.fixture(autouse=True)
def trust_the_server(chatapp_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Vonage's SDK speaks only HTTPS, through requests: trust the server's CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(chatapp_server.ca_file))


@dataclass
class Sender:
    account: Any  # chatapp_accounts.testing.kit.Account
    messages: Any  # vonage_messages.Messages


def _sender(chatapp: Any, chatapp_server: Any, channel: str, **webhooks: Any) -> Sender:
    tenant = chatapp.tenant()
    application = chatapp.application(tenant, **webhooks)
    account = chatapp.account(tenant, channel, application=application)
    client = messages_client(chatapp_server.api_host, application.id, application.private_key)
    return Sender(account, client)


@pytest.fixture
def whatsapp(chatapp: Any, chatapp_server: Any, webhook_receiver: Any) -> Sender:
    """A WhatsApp number whose application's webhooks go to the test's receiver."""
    return _sender(chatapp, chatapp_server, "whatsapp", webhook_url=webhook_receiver.url())


@pytest.fixture
def messenger(chatapp: Any, chatapp_server: Any, webhook_receiver: Any) -> Sender:
    return _sender(chatapp, chatapp_server, "messenger", webhook_url=webhook_receiver.url())


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Answering:
    sender: Sender
    handler: InboundHandler


@pytest.fixture
def answering(chatapp: Any, chatapp_server: Any, webhook_receiver: Any) -> Iterator[Answering]:
    """The application's own inbound handler, served on a loopback port: inbound messages
    go to it, the statuses of its answers to the test's receiver."""
    tenant = chatapp.tenant()
    handler = InboundHandler(tenant.signature_secret, messages=None)
    server: WSGIServer = make_server("127.0.0.1", 0, handler, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        inbound_url = f"http://127.0.0.1:{server.server_port}/inbound"
        application = chatapp.application(tenant, inbound_url=inbound_url,
                                          status_url=webhook_receiver.url("/status"))  # fmt: skip
        account = chatapp.account(tenant, "whatsapp", application=application)
        handler.messages = messages_client(chatapp_server.api_host, application.id,
                                           application.private_key)  # fmt: skip
        yield Answering(Sender(account, handler.messages), handler)
    finally:
        server.shutdown()
        server.server_close()
