"""Sending, with Vonage's own SDK, unchanged. In production `api_host` is Vonage's
(api.nexmo.com); in the tests, the chatapp-accounts server's HTTPS address (its CA trusted
through REQUESTS_CA_BUNDLE, which the SDK's HTTP client, requests, reads)."""

from __future__ import annotations

from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_messages import Messages
from vonage_messages.models import MessengerText, WhatsappText


def messages_client(api_host: str, application_id: str, private_key: str) -> Messages:
    """Messages API client authenticated as the application (an RS256 JWT per request)."""
    options = HttpClientOptions(api_host=api_host, max_retries=0, timeout=30)
    auth = Auth(application_id=application_id, private_key=private_key)
    return Messages(HttpClient(auth, options))


def send_text(messages: Messages, channel: str, to: str, from_: str, text: str) -> str:
    """A text on WhatsApp or Messenger; the message_uuid the Messages API answered."""
    model = {"whatsapp": WhatsappText, "messenger": MessengerText}[channel]
    sent = messages.send(model(to=to, from_=from_, text=text, client_ref="example-app"))
    return str(sent.message_uuid)
