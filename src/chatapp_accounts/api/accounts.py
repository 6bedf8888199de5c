"""Routes of the External Accounts API, under /beta/chatapp-accounts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

from ..domain import accounts
from ..domain.errors import InvalidInput
from ..domain.models import Account, AccountPage, Provider
from . import bodies
from .auth import BasicOrBearerAuth, basic_credentials, split_authorization
from .http import (
    Services,
    base_url,
    header,
    json_body,
    json_response,
    no_content,
    page_links,
    query,
    route,
)
from .openapi import served_spec_bytes

PREFIX = "/beta/chatapp-accounts"
_encode = msgspec.json.Encoder().encode


class AccountBody(msgspec.Struct, omit_defaults=True):
    """An account as the API answers it, in the order of Vonage's answers: a field that is None
    is left out. An output schema of its own, so nothing else of an Account can reach a body; a
    Struct rather than a dict because a page makes twenty (7% fewer instructions per page)."""

    external_id: str
    api_key: str
    provider: Provider  # a StrEnum: encoded as its value
    applications: list[str]
    name: str | None = None
    access_token: str | None = None  # Messenger's only, "" when it has none


_MESSENGER = Provider.MESSENGER  # a module constant: an enum member's lookup costs 0.1 µs a row


def account_json(account: Account) -> AccountBody:
    return AccountBody(
        account.external_id,
        account.api_key,
        account.provider,
        # Account.applications, inlined: a property call per row is 2% of a page's instructions.
        [account.application_id] if account.application_id else [],
        account.name,
        (account.access_token or "") if account.provider is _MESSENGER else None,
    )


def page_json(page: AccountPage, base: str, provider: Provider | None) -> dict[str, Any]:
    # Every value is an int or a provider name: nothing in these queries needs escaping.
    tail = f"&page_size={page.page_size}" + (f"&provider={provider.value}" if provider else "")

    def href(number: int) -> str:
        return f"{base}{PREFIX}?page_number={number}{tail}"

    return {
        "page_number": page.page_number,
        "page_size": page.page_size,
        "total_items": page.total_items,
        "total_pages": page.total_pages,
        "_embedded": [account_json(a) for a in page.items],
        "_links": page_links(href, page.page_number, page.total_pages),
    }


def list_body(services: Services) -> Callable[[Scope], Awaitable[bytes]]:
    """GET the tenant's accounts, a page at a time: the answer's body for a request, or a
    DomainError. Served by the route (`list_all` below) and, without a Request or a Response
    object, by the hot layer (hot.py)."""
    reads = services.reads
    auth = services.authenticate
    assert isinstance(auth, BasicOrBearerAuth)
    settings = services.settings

    async def body(scope: Scope) -> bytes:
        authorization = header(scope, b"authorization")
        try:
            provider, page_number, page_size = bodies.list_query(query(scope))
        except InvalidInput:
            # who may not list hears 401, not what is wrong with the query
            auth.tenant_for(authorization, scope["path"])
            raise
        if split_authorization(authorization)[0] == "basic":  # auth and count in one query
            api_key, api_secret = basic_credentials(authorization)
            page = await accounts.list_accounts_with_basic_auth(
                reads, api_key, api_secret,
                provider=provider, page_number=page_number, page_size=page_size,
            )  # fmt: skip
            scope["tenant_api_key"] = api_key
        else:
            tenant = auth.tenant_for(authorization, scope["path"])
            scope["tenant_api_key"] = tenant.api_key
            page = await accounts.list_accounts(
                reads, tenant,
                provider=provider, page_number=page_number, page_size=page_size,
            )  # fmt: skip
        return _encode(page_json(page, base_url(settings, scope), provider))

    return body


def account_routes(services: Services) -> list[Route]:
    uow = services.uow_factory
    auth = services.authenticate
    limit = services.settings.max_body_bytes
    list_page = list_body(services)

    async def list_all(request: Request) -> Response:
        return Response(await list_page(request.scope), media_type="application/json")

    async def create_messenger(request: Request) -> Response:
        tenant = auth(request)
        data = bodies.messenger_create(await json_body(request, limit))
        account = accounts.create_messenger_account(
            uow,
            tenant,
            external_id=data.external_id,
            access_token=data.access_token,
            name=data.name,
            application_id=data.application_id,
        )
        return json_response(account_json(account), 201)

    def getter(provider: Provider) -> Any:
        async def get(request: Request) -> Response:
            tenant = auth(request)
            external_id = request.path_params["external_id"]
            return json_response(
                account_json(accounts.get_account(uow, tenant, provider, external_id))
            )

        return get

    async def patch_messenger(request: Request) -> Response:
        tenant = auth(request)
        external_id = request.path_params["external_id"]
        changes = bodies.messenger_patch(await json_body(request, limit), external_id)
        account = accounts.update_messenger_account(uow, tenant, external_id, **changes)
        return json_response(account_json(account))

    async def delete_messenger(request: Request) -> Response:
        tenant = auth(request)
        accounts.delete_messenger_account(uow, tenant, request.path_params["external_id"])
        return no_content()

    async def link(request: Request) -> Response:
        tenant = auth(request)
        application_id = bodies.link_body(await json_body(request, limit))
        p = request.path_params
        account = accounts.link_application(
            uow, tenant, Provider.parse(p["provider"]), p["external_id"], application_id
        )
        return json_response(account_json(account))

    async def unlink(request: Request) -> Response:
        tenant = auth(request)
        p = request.path_params
        accounts.unlink_application(
            uow, tenant, Provider.parse(p["provider"]), p["external_id"], p["application_id"]
        )
        return no_content()

    spec = served_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    return [
        route(PREFIX, GET=list_all),
        route(PREFIX + "/", GET=list_all),
        route(PREFIX + "/openapi.json", GET=openapi),
        route(PREFIX + "/messenger", POST=create_messenger),
        route(
            PREFIX + "/messenger/{external_id}",
            GET=getter(Provider.MESSENGER),
            PATCH=patch_messenger,
            DELETE=delete_messenger,
        ),
        route(PREFIX + "/viber_service_msg/{external_id}", GET=getter(Provider.VIBER_SERVICE_MSG)),
        route(PREFIX + "/whatsapp/{external_id}", GET=getter(Provider.WHATSAPP)),
        route(PREFIX + "/{provider}/{external_id}/applications", POST=link),
        route(PREFIX + "/{provider}/{external_id}/applications/{application_id}", DELETE=unlink),
    ]
