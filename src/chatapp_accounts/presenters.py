"""How messages, webhook records and a tenant's limits are shown as JSON: by the sandbox and
admin APIs and by the command line alike (no HTTP here)."""

from __future__ import annotations

import json
from typing import Any

from .domain.limits import ACCOUNTS, MESSAGES, limit_of
from .domain.models import (
    AttemptRecord,
    Conversation,
    MessageRecord,
    SignatureCheck,
    TenantLimits,
    WebhookDetail,
    WebhookRecord,
)
from .domain.payloads import timestamp

SHOWN = 16  # characters of a token shown before the mask


def masked(value: str) -> str:
    """A secret's start, enough to tell two apart, and a mark where the rest was."""
    return value[:SHOWN] + "…(masked)" if len(value) > SHOWN else "…(masked)"


def masked_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers as shown anywhere outside the request itself: Authorization masked."""
    return {k: masked(v) if k.lower() == "authorization" else v for k, v in headers.items()}


def webhook_json(hook: WebhookRecord) -> dict[str, Any]:
    return {
        "id": str(hook.id),
        "message_uuid": hook.message_uuid,
        "kind": hook.kind,
        "url": hook.url,
        "state": hook.state,
        "created_at": timestamp(hook.created_at),
        "next_attempt_at": timestamp(hook.next_attempt_at) if hook.next_attempt_at else None,
        "body": json.loads(hook.body),
        "attempts": [
            {
                "timestamp": timestamp(a.at),
                "url": a.url,
                "status_code": a.status_code,
                "error": a.error,
                "next_attempt_at": timestamp(a.next_attempt_at) if a.next_attempt_at else None,
            }
            for a in hook.attempts
        ],
    }


def message_json(message: MessageRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": message.uuid,
        "direction": message.direction,
        "channel": message.channel,
        "message_type": message.message_type,
        "to": message.to,
        "from": message.sender,
        "status": message.status,
        "application_id": message.application_id,
        "created_at": timestamp(message.created_at),
        "content": message.content,
        "statuses": [
            {
                "status": s.status,
                "timestamp": timestamp(s.at),
                **({"error": s.error} if s.error else {}),
            }
            for s in message.statuses
        ],
        "webhooks": [webhook_json(h) for h in message.webhooks],
    }
    if message.client_ref is not None:
        body["client_ref"] = message.client_ref
    return body


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "channel": conversation.channel,
        "account": conversation.account,
        "customer": conversation.peer,
        "messages": conversation.messages,
        "last": message_json(conversation.last),
    }


def _attempt_json(attempt: AttemptRecord, check: SignatureCheck | None) -> dict[str, Any]:
    return {
        "timestamp": timestamp(attempt.at),
        "url": attempt.url,
        "request_headers": masked_headers(attempt.request_headers or {}),
        "status_code": attempt.status_code,
        "answer": attempt.answer,
        "latency_ms": round(attempt.latency * 1000, 1) if attempt.latency is not None else None,
        "error": attempt.error,
        "next_attempt_at": timestamp(attempt.next_attempt_at) if attempt.next_attempt_at else None,
        "signature": (
            {
                "claims": check.claims,
                "body_sha256": check.body_hash,
                "payload_hash_matches": check.hash_matches,
                "verified": check.verified,
                "reason": check.reason,
            }
            if check is not None
            else None
        ),
    }


def webhook_detail_json(detail: WebhookDetail) -> dict[str, Any]:
    """A webhook with each attempt's request (Authorization masked), answer and signature
    check, and the body of the one before it (`previous`), for a diff."""
    body = webhook_json(detail.record)
    body["attempts"] = [
        _attempt_json(a, c) for a, c in zip(detail.record.attempts, detail.checks, strict=True)
    ]
    previous = detail.previous
    body["previous"] = (
        {"id": str(previous.id), "body": json.loads(previous.body)} if previous else None
    )
    return body


def limits_json(api_key: str, limits: TenantLimits, requests: int, messages: int) -> dict[str, Any]:
    """A tenant's own limits per second (null: the default) and those that hold (docs/limits.md),
    the defaults being `requests` and `messages`."""
    return {
        "api_key": api_key,
        "requests_per_second": limits.requests_per_second,
        "messages_per_second": limits.messages_per_second,
        "effective": {
            "requests_per_second": limit_of(limits, ACCOUNTS, requests, messages),
            "messages_per_second": limit_of(limits, MESSAGES, requests, messages),
        },
    }
