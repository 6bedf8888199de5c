"""How messages and webhook records are shown as JSON: by the sandbox API and by the command
line alike (no HTTP here)."""

from __future__ import annotations

import json
from typing import Any

from .domain.models import MessageRecord, WebhookRecord
from .domain.payloads import timestamp


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
