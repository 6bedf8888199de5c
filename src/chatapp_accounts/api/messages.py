"""Routes of the Messages API: POST /v1/messages (Basic or Bearer), PATCH
/v1/messages/{message_uuid} (Bearer), and the served spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import messages
from ..domain.errors import Throttled
from ..domain.ports import Channels, Load
from . import message_bodies
from .auth import credentials
from .http import Services, json_input, json_response, route
from .openapi import served_messages_spec_bytes

PREFIX = "/v1/messages"


def message_routes(
    services: Services,
    load: Load,
    channels: Channels,
    on_accepted: Callable[[str], None],
    on_throttled: Callable[[], None],
) -> list[Route]:
    call = services.call
    limit = services.settings.max_body_bytes
    live = services.settings.live_channels
    message_bodies.outbound_validators()  # built now, not on the first request

    async def send(request: Request) -> Response:
        scope = request.scope
        creds = credentials(scope)
        try:
            sent = await call(
                scope,
                messages.send_message,
                creds,
                await json_input(request, limit, message_bodies.outbound_messages),
                load,
                live,
            )
        except Throttled as exc:
            if exc.backlog:  # (a tenant past its limit is counted by the limiter)
                on_throttled()
            raise
        on_accepted(sent.channel)
        body: dict[str, Any] = {"message_uuid": sent.message_uuid}
        if sent.workflow_id is not None:
            body["workflow_id"] = sent.workflow_id
        return json_response(body, 202)

    async def update(request: Request) -> Response:
        scope = request.scope
        creds = credentials(scope)
        await call(
            scope,
            messages.update_message,
            creds,
            scope["path_params"]["message_uuid"],
            await json_input(request, limit, message_bodies.message_status),
            channels,
        )
        return Response(status_code=202)

    spec = served_messages_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    return [
        route(PREFIX, POST=send),
        route(PREFIX + "/openapi.json", GET=openapi),
        route(PREFIX + "/{message_uuid}", PATCH=update),
    ]
