"""Routes of the Application API v2, under /v2/applications (Basic auth only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import applications
from ..domain.models import Application, ApplicationPage
from . import bodies
from .http import (
    Services,
    base_url,
    json_body,
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
    uow = services.uow_factory
    auth = services.authenticate_basic
    settings = services.settings
    limit = settings.max_body_bytes

    async def list_all(request: Request) -> Response:
        tenant = auth(request)
        page, page_size = bodies.applications_query(query(request.scope))
        result = applications.list_applications(uow, tenant, page=page, page_size=page_size)
        return json_response(page_json(result, base_url(settings, request.scope)))

    async def create(request: Request) -> Response:
        tenant = auth(request)
        data = bodies.application_body(await json_body(request, limit))
        made = applications.create_application(
            uow,
            tenant,
            name=data.name,
            capabilities=data.capabilities,
            public_key=data.public_key,
            privacy=data.privacy,
        )
        return json_response(application_json(made.application, made.private_key), 201)

    async def get(request: Request) -> Response:
        tenant = auth(request)
        application = applications.get_application(uow, tenant, request.path_params["id"])
        return json_response(application_json(application))

    async def put(request: Request) -> Response:
        tenant = auth(request)
        data = bodies.application_body(await json_body(request, limit))
        application = applications.update_application(
            uow,
            tenant,
            request.path_params["id"],
            name=data.name,
            capabilities=data.capabilities,
            public_key=data.public_key,
            privacy=data.privacy,
        )
        return json_response(application_json(application))

    async def delete(request: Request) -> Response:
        tenant = auth(request)
        applications.delete_application(uow, tenant, request.path_params["id"])
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
