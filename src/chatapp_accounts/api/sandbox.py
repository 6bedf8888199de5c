"""Routes of the sandbox API, this project's own (docs/messages.md): a simulated customer
sends to an account and reads what it was sent; the tenant's messages are listed with their
statuses and webhook attempts; an account's fault switches are read and set. Authenticated
like the other APIs (Basic or Bearer)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import messages, rules, sandbox, webhooks
from ..domain.models import Faults, MessagePage
from ..presenters import conversation_json, message_json, webhook_detail_json
from . import message_bodies
from .auth import credentials
from .http import Services, base_url, json_input, json_response, page_links, query, route
from .openapi import served_sandbox_spec_bytes

PREFIX = "/sandbox/v1"


def page_json(page: MessagePage, base: str, params: dict[str, str]) -> dict[str, Any]:
    kept = "".join(
        f"&{k}={quote(params[k], safe='')}"
        for k in ("account", "direction", "status", "q")
        if k in params
    )

    def href(number: int) -> str:
        return f"{base}{PREFIX}/messages?page_number={number}&page_size={page.page_size}{kept}"

    return {
        "page_number": page.page_number,
        "page_size": page.page_size,
        "total_items": page.total_items,
        "total_pages": page.total_pages,
        "_embedded": {"messages": [message_json(m) for m in page.items]},
        "_links": page_links(href, page.page_number, page.total_pages),
    }


def faults_json(faults: Faults) -> dict[str, Any]:
    return {"delay": faults.delay, "fail": faults.fail}


def sandbox_routes(services: Services) -> list[Route]:
    call = services.call
    settings = services.settings
    limit = settings.max_body_bytes
    message_bodies.inbound_validators()  # built now, not on the first request

    async def inbound(request: Request) -> Response:
        scope = request.scope
        creds = credentials(scope)
        message_uuid = await call(
            scope,
            messages.sandbox_inbound,
            creds,
            await json_input(request, limit, message_bodies.inbound_message),
        )
        return json_response({"message_uuid": message_uuid}, 202)

    async def read(request: Request) -> Response:
        scope = request.scope
        message_uuid = scope["path_params"]["message_uuid"]
        await call(scope, messages.sandbox_read, credentials(scope), message_uuid)
        return json_response({"message_uuid": message_uuid, "status": "read"}, 202)

    async def list_all(request: Request) -> Response:
        scope = request.scope
        params = query(scope)
        page = await call(
            scope,
            messages.list_messages,
            credentials(scope),
            lambda: message_bodies.messages_query(params),
        )
        return json_response(page_json(page, base_url(settings, scope), params))

    async def one(request: Request) -> Response:
        scope = request.scope
        uuid = scope["path_params"]["message_uuid"]
        found = await call(scope, messages.get_message, credentials(scope), uuid)
        return json_response(message_json(found))

    async def conversations(request: Request) -> Response:
        scope = request.scope
        found = await call(scope, messages.list_conversations, credentials(scope))
        return json_response({"conversations": [conversation_json(c) for c in found]})

    async def webhook(request: Request) -> Response:
        scope = request.scope
        webhook_id = scope["path_params"]["webhook_id"]
        detail = await call(scope, webhooks.webhook_detail, credentials(scope), webhook_id)
        return json_response(webhook_detail_json(detail))

    async def redeliver(request: Request) -> Response:
        scope = request.scope
        webhook_id = scope["path_params"]["webhook_id"]
        await call(scope, webhooks.redeliver_own, credentials(scope), webhook_id)
        return json_response({"id": webhook_id, "state": "pending"}, 202)

    async def resend(request: Request) -> Response:
        scope = request.scope
        webhook_id = scope["path_params"]["webhook_id"]
        body = await json_input(request, limit, message_bodies.webhook_body)
        new = await call(scope, webhooks.resend_webhook, credentials(scope), webhook_id, body)
        return json_response({"id": new, "state": "pending"}, 202)

    max_delay = rules.sandbox_delay_max(settings.provider_timeout_seconds)

    async def get_faults(request: Request) -> Response:
        scope = request.scope
        path = scope["path_params"]
        faults = await call(scope, sandbox.get_faults, credentials(scope), path["channel"],
                            path["external_id"])  # fmt: skip
        return json_response(faults_json(faults))

    async def put_faults(request: Request) -> Response:
        scope = request.scope
        path = scope["path_params"]
        faults = await call(
            scope,
            sandbox.set_faults,
            credentials(scope),
            path["channel"],
            path["external_id"],
            await json_input(request, limit, message_bodies.faults_body),
            max_delay,
        )
        return json_response(faults_json(faults))

    spec = served_sandbox_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    return [
        route(PREFIX + "/inbound", POST=inbound),
        route(PREFIX + "/messages", GET=list_all),
        route(PREFIX + "/messages/{message_uuid}", GET=one),
        route(PREFIX + "/messages/{message_uuid}/read", POST=read),
        route(PREFIX + "/conversations", GET=conversations),
        route(PREFIX + "/webhooks/{webhook_id}", GET=webhook),
        route(PREFIX + "/webhooks/{webhook_id}/redeliver", POST=redeliver),
        route(PREFIX + "/webhooks/{webhook_id}/resend", POST=resend),
        route(PREFIX + "/accounts/{channel}/{external_id}/faults", GET=get_faults, PUT=put_faults),
        route(PREFIX + "/openapi.json", GET=openapi),
    ]
