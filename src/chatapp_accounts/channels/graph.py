"""Messenger and WhatsApp through Meta's Graph API (docs/providers.md): one module for both, as
they share the API, its errors and its callback route.

A send is one `POST {CHATAPP_META_GRAPH_URL}/{id}/messages`, the token in an `Authorization:
Bearer` header (never in the URL): WhatsApp to the number's Cloud API `phone_number_id` with the
number's access token, Messenger to the page id with the page token. The body is built by
meta_wire.py, the answer read by it: the message id of a success (`submitted`), or a Refusal by
the error tables. A connection that fails or an answer that does not come is a transient
refusal, tried again by the sender.

Graph has no idempotency key: a try whose answer was lost (a timeout, a crash) is tried again
and may reach the customer twice. That window, one round trip, is the at-least-once promise;
`chatapp_send_tries_total{outcome="unknown_retried"}` counts the tries made again after a crash,
`{outcome="timeout"}` those made again after no answer came in time."""

from __future__ import annotations

import time

from ..domain.messages import missing_credentials
from ..domain.models import MessageRecord, StatusChange
from ..domain.providers import Refusal, SenderCredentials, SendTry, Taken
from .http import Answer, ProviderClient, Unreachable
from .meta_wire import (
    graph_message_id,
    graph_refusal,
    messenger_request,
    whatsapp_mark_read,
    whatsapp_request,
)


def _unreachable(reason: str) -> Refusal:
    return Refusal(retry=True, code="1331", detail=f"Graph unreachable: {reason}")


def _answer(answer: Answer, channel: str, asked_at: float) -> Taken | Refusal:
    """`asked_at`: when the request left, at or before the provider took the message (a
    Messenger read watermark is compared with it)."""
    if answer.too_large:
        return Refusal(retry=answer.status >= 500, code="1331",
                       detail=f"Graph answered HTTP {answer.status} with over 1 MiB")  # fmt: skip
    if 200 <= answer.status < 300:
        message_id = graph_message_id(answer.status, answer.body, channel)
        if message_id is not None:
            return Taken([StatusChange("submitted", asked_at)], message_id)
    return graph_refusal(answer.status, answer.body, answer.retry_after)


class GraphChannel:
    """WhatsApp (`channel="whatsapp"`) or Messenger (`"messenger"`) over one Graph client."""

    live: bool = True

    def __init__(self, channel: str, client: ProviderClient, base_url: str, rate: float) -> None:
        self._channel = channel
        self._client = client
        self._base = base_url
        self.rate: float | None = rate

    async def submit(self, send: SendTry) -> Taken | Refusal:
        message, credentials = send.job.message, send.credentials
        whatsapp = self._channel == "whatsapp"
        lacking = missing_credentials(self._channel, credentials)  # the check a send passed
        if lacking is not None or credentials is None:  # (changed since it was accepted)
            return Refusal(retry=False, code="1331", detail=f"Not sendable on Graph: {lacking}")
        try:
            if whatsapp:
                body = whatsapp_request(message, send.context_provider_id)
                path = f"/{credentials.phone_number_id}/messages"
            else:
                body = messenger_request(message)
                path = f"/{message.sender}/messages"
        except ValueError as exc:
            return Refusal(retry=False, code="1020", detail=f"Not sendable on Graph: {exc}")
        asked_at = time.time()
        try:
            answer = await self._client.call(
                "POST", self._base + path, token=credentials.access_token, json=body
            )
        except Unreachable as exc:
            return _unreachable(str(exc))
        return _answer(answer, self._channel, asked_at)

    async def revoke(self, message: MessageRecord, credentials: SenderCredentials | None,
                     ) -> Refusal | None:  # fmt: skip
        return Refusal(retry=False, code="1020", detail="Graph messages cannot be revoked")

    async def mark_read(self, message: MessageRecord, provider_id: str,
                        credentials: SenderCredentials | None) -> Refusal | None:  # fmt: skip
        """WhatsApp's mark-as-read, from the number the customer wrote to."""
        if self._channel != "whatsapp" or credentials is None:
            return None
        if not credentials.phone_number_id or not credentials.access_token:
            return None  # a sandbox number: nothing to tell Meta
        url = f"{self._base}/{credentials.phone_number_id}/messages"
        try:
            answer = await self._client.call(
                "POST", url, token=credentials.access_token, json=whatsapp_mark_read(provider_id)
            )
        except Unreachable as exc:
            return _unreachable(str(exc))
        if 200 <= answer.status < 300:
            return None
        return graph_refusal(answer.status, answer.body, answer.retry_after)

    async def close(self) -> None:
        await self._client.close()
