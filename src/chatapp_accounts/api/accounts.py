"""Routes of the External Accounts API, under /beta/chatapp-accounts."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import accounts
from ..domain.models import Account, AccountPage, Provider
from . import bodies
from .auth import credentials
from .http import (
    Handler,
    Services,
    base_url,
    json_input,
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
    """The account as the External Accounts API answers it (with a Messenger page's token, as
    Vonage's spec has it; `operator_account_json` for the admin API, without)."""
    return AccountBody(
        account.external_id,
        account.api_key,
        account.provider,
        # Account.applications, inlined: a property call per row is 2% of a page's instructions.
        [account.application_id] if account.application_id else [],
        account.name,
        (account.access_token or "") if account.provider is _MESSENGER else None,
    )


def operator_account_json(account: Account) -> AccountBody:
    """The account as the External Accounts API shows it, less any credential: the admin API's
    answers never hold one (docs/operations.md)."""
    return msgspec.structs.replace(account_json(account), access_token=None)


def page_json(page: AccountPage, base: str, provider: Provider | None) -> dict[str, Any]:
    """The list's body, HAL links keeping the provider filter."""
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


def account_routes(services: Services) -> list[Route]:
    call = services.call
    settings = services.settings
    limit = settings.max_body_bytes

    async def list_all(request: Request) -> Response:
        scope = request.scope
        params = query(scope)
        page = await call(
            scope, accounts.list_accounts, credentials(scope), lambda: bodies.list_query(params)
        )
        return json_response(page_json(page, base_url(settings, scope), page.provider))

    async def create_messenger(request: Request) -> Response:
        creds = credentials(request.scope)
        account = await call(
            request.scope,
            accounts.create_messenger_account,
            creds,
            await json_input(request, limit, bodies.messenger_create),
        )
        return json_response(account_json(account), 201)

    def getter(provider: Provider) -> Handler:
        async def get(request: Request) -> Response:
            scope = request.scope
            account = await call(
                scope,
                accounts.get_account,
                credentials(scope),
                provider,
                scope["path_params"]["external_id"],
            )
            return json_response(account_json(account))

        return get

    async def patch_messenger(request: Request) -> Response:
        creds = credentials(request.scope)
        external_id = request.path_params["external_id"]
        account = await call(
            request.scope,
            accounts.update_messenger_account,
            creds,
            external_id,
            await json_input(request, limit, lambda raw: bodies.messenger_patch(raw, external_id)),
        )
        return json_response(account_json(account))

    async def delete_messenger(request: Request) -> Response:
        creds = credentials(request.scope)
        external_id = request.path_params["external_id"]
        await call(request.scope, accounts.delete_account, creds, Provider.MESSENGER, external_id)
        return no_content()

    async def link(request: Request) -> Response:
        creds = credentials(request.scope)
        p = request.path_params
        account = await call(
            request.scope,
            accounts.link_application,
            creds,
            Provider.parse(p["provider"]),
            p["external_id"],
            await json_input(request, limit, bodies.link_body),
        )
        return json_response(account_json(account))

    async def unlink(request: Request) -> Response:
        creds = credentials(request.scope)
        p = request.path_params
        await call(
            request.scope,
            accounts.unlink_application,
            creds,
            Provider.parse(p["provider"]),
            p["external_id"],
            p["application_id"],
        )
        return no_content()

    spec = served_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    def account_handlers(provider: Provider) -> dict[str, Handler]:
        if provider is Provider.MESSENGER:
            return {"GET": getter(provider), "PATCH": patch_messenger, "DELETE": delete_messenger}
        return {"GET": getter(provider)}

    # The router tries routes in order: the reads of one account, the most frequent requests,
    # first (no two of these paths overlap, so the order changes no answer).
    return [
        *(
            route(f"{PREFIX}/{provider.value}/{{external_id}}", **account_handlers(provider))
            for provider in accounts.READABLE
        ),
        route(PREFIX, GET=list_all),
        route(PREFIX + "/", GET=list_all),
        route(PREFIX + "/openapi.json", GET=openapi),
        route(PREFIX + "/messenger", POST=create_messenger),
        route(PREFIX + "/{provider}/{external_id}/applications", POST=link),
        route(PREFIX + "/{provider}/{external_id}/applications/{application_id}", DELETE=unlink),
    ]
