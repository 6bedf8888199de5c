"""Vonage's Redact API, for messages (docs/messages.md, "Redaction"):
`POST /v1/redact/transaction` with `{"id": "<message uuid>", "product": "messages",
"type": "inbound" | "outbound"}` (type optional), Basic auth (api_key:api_secret); 204 No
Content once the message's content is removed. Errors are problem+json (api/errors.py)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import retention
from ..domain.errors import RedactInvalid
from ..domain.models import RedactRequest
from .auth import credentials
from .http import Services, json_input, route

PATH = "/v1/redact/transaction"


def redact_body(raw: bytes) -> RedactRequest:
    """The request's JSON object: 422 for anything else, or a missing or non-string field."""
    try:
        body: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise RedactInvalid("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise RedactInvalid("body", "must be a JSON object")
    fields: dict[str, str | None] = {}
    for name in ("id", "product", "type"):
        value = body.get(name)
        if value is None and name == "type":
            fields[name] = None
            continue
        if not isinstance(value, str):
            raise RedactInvalid(
                name, "is required (a string)" if value is None else "must be a string"
            )
        fields[name] = value
    return RedactRequest(id=str(fields["id"]), product=str(fields["product"]), type=fields["type"])


def redact_routes(services: Services) -> list[Route]:
    call = services.call
    limit = services.settings.max_body_bytes

    async def redact(request: Request) -> Response:
        scope = request.scope
        await call(
            scope,
            retention.redact_message,
            credentials(scope),
            await json_input(request, limit, redact_body),
        )
        return Response(status_code=204)

    return [route(PATH, POST=redact)]
