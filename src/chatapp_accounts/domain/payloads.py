"""The bodies of the webhooks a message causes, in the Messages API v1 shapes of its spec's
`x-webhooks` (message-status, inbound-message), as plain dicts. Nothing secret is ever in one:
they are made of the message's own fields."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from .models import InboundInput, MessageRecord, StatusChange

# Where a customer may reply to a message, the channels whose inbound shape has a `context`.
CONTEXT_CHANNELS = ("whatsapp", "viber_service")


def timestamp(at: float) -> str:
    """ISO 8601 in UTC with milliseconds, as Vonage sends: 2025-02-03T12:14:25.123Z."""
    seconds = int(at)
    return f"{_second(seconds)}.{int((at - seconds) * 1000):03d}Z"


@functools.lru_cache(maxsize=64)  # a burst's statuses share their second
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


ERRORS_URL = "https://developer.vonage.com/api-errors/messages#"


def status_error(code: str, detail: str, message_uuid: str) -> dict[str, str]:
    """The Messages spec's `error` of a `rejected` or `undeliverable` status webhook."""
    return {"type": ERRORS_URL + code, "title": code, "detail": detail, "instance": message_uuid}


# Vonage's titles of the codes a message can end with (messages.v1.20.0.yaml, errors).
_TITLES = {
    "1000": "Throttled",
    "1020": "Invalid params",
    "1022": "Invalid template",
    "1260": "Destination unreachable",
    "1282": "Message rejected by provider",
    "1300": "Not part of the provider network",
    "1330": "Delivery failed",
    "1331": "Provider error",
    "1340": "Outside the allowed window",
    "1350": "Phone matching fee",
    "1360": "TTL expired",
    "1370": "Expired access token",
}


def error_title(code: str) -> str:
    """Vonage's title of an error code a message can end with."""
    return _TITLES.get(code, "Provider error")


def provider_error(code: str, detail: str, message_uuid: str) -> dict[str, str]:
    """The `error` of a message its channel failed: Vonage's title for the code, then what
    happened (a provider's own code and message: `Graph error 100/2018001: No matching user
    found`; the sandbox's own words)."""
    return status_error(code, f"{error_title(code)} - {detail}", message_uuid)


def status_body(
    message: MessageRecord, change: StatusChange, workflow: dict[str, str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": message.uuid,
        "to": message.to,
        "from": message.sender,
        "timestamp": timestamp(change.at),
        "status": change.status,
        "channel": message.channel,
    }
    if message.client_ref is not None:
        body["client_ref"] = message.client_ref
    if change.error is not None:
        body["error"] = change.error
    if workflow is not None:
        body["workflow"] = workflow
    return body


def inbound_body(
    message: MessageRecord, inbound: InboundInput, replied_from: str | None
) -> dict[str, Any]:
    """`replied_from`: the sender of the message `inbound.context` names (its `message_from`)."""
    body: dict[str, Any] = {
        "channel": message.channel,
        "message_uuid": message.uuid,
        "to": message.to,
        "from": message.sender,
        "timestamp": timestamp(message.created_at),
        "message_type": message.message_type,
        **inbound.content,
    }
    if message.channel == "whatsapp":
        if inbound.profile_name is not None:
            body["profile"] = {"name": inbound.profile_name}
        body["context_status"] = "available" if inbound.context else "none"
        if inbound.context:
            body["context"] = {"message_uuid": inbound.context, "message_from": replied_from}
    elif message.channel == "viber_service" and inbound.context:
        body["context"] = {"message_uuid": inbound.context}
    elif message.channel == "rcs":
        body["context_status"] = "none"  # the spec: RCS has no context
    return body
