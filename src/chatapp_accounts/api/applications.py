"""Routes of the Application API v2, under /v2/applications (Basic auth only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import applications
from ..domain.models import Application, ApplicationPage, Credentials
from . import bodies
from .auth import credentials
from .http import (
    Services,
    base_url,
    json_input,
    json_response,
    no_content,
    page_links,
    query,
    route,
)
from .openapi import served_application_spec_bytes

PREFIX = "/v2/applications"


def application_json(application: Application, private_key: str | None = None) -> dict[str, Any]:
    keys = {"public_key": application.public_key}
    if private_key is not None:
        keys["private_key"] = private_key
    return {
        "id": application.id,
        "name": application.name,
        "keys": keys,
        "capabilities": application.capabilities,
        "privacy": application.privacy,
        "_links": {"self": {"href": f"{PREFIX}/{application.id}"}},
    }


def page_json(page: ApplicationPage, base: str) -> dict[str, Any]:
    def href(number: int) -> str:
        return f"{base}{PREFIX}?{urlencode({'page': number, 'page_size': page.page_size})}"

    return {
        "page_size": page.page_size,
        "page": page.page,
        "total_items": page.total_items,
        "total_pages": page.total_pages,
        "_embedded": {"applications": [application_json(a) for a in page.items]},
        "_links": page_links(href, page.page, page.total_pages),
    }


def application_routes(services: Services) -> list[Route]:
    call = services.call
    settings = services.settings
    limit = settings.max_body_bytes

    def basic(request: Request) -> Credentials:
        return credentials(request.scope, bearer=False)  # Basic only, as Vonage's

    async def list_all(request: Request) -> Response:
        scope = request.scope
        params = query(scope)
        page = await call(
            scope,
            applications.list_applications,
            basic(request),
            lambda: bodies.applications_query(params),
        )
        return json_response(page_json(page, base_url(settings, scope)))

    async def create(request: Request) -> Response:
        creds = basic(request)
        made = await call(
            request.scope,
            applications.create_application,
            creds,
            await json_input(request, limit, bodies.application_body),
        )
        return json_response(application_json(made.application, made.private_key), 201)

    async def get(request: Request) -> Response:
        application = await call(
            request.scope,
            applications.get_application,
            basic(request),
            request.path_params["id"],
        )
        return json_response(application_json(application))

    async def put(request: Request) -> Response:
        creds = basic(request)
        application = await call(
            request.scope,
            applications.update_application,
            creds,
            request.path_params["id"],
            await json_input(request, limit, bodies.application_body),
        )
        return json_response(application_json(application))

    async def delete(request: Request) -> Response:
        creds = basic(request)
        await call(request.scope, applications.delete_application, creds, request.path_params["id"])
        return no_content()

    spec = served_application_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    return [
        route(PREFIX, GET=list_all, POST=create),
        route(PREFIX + "/", GET=list_all, POST=create),
        # Before `/{id}`: "openapi.json" is no application id (ids are UUIDs).
        route(PREFIX + "/openapi.json", GET=openapi),
        route(PREFIX + "/{id}", GET=get, PUT=put, DELETE=delete),
    ]
