"""Small helpers the route modules share: JSON answers, JSON bodies, one route per path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..config import Settings
from ..domain.errors import AccessDenied, DomainError, NotAuthenticated, ServiceUnavailable
from ..domain.models import BasicCredentials, BearerCredentials, Credentials, SessionCredentials
from ..domain.ports import UnitOfWorkFactory
from ..security.service import SecurityService
from .bodies import is_json_media_type
from .errors import error_response

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    uow_factory: UnitOfWorkFactory
    security: SecurityService
    # Work dropped undone, by kind (send_job, webhook): chatapp_work_dropped_total.
    on_dropped: Callable[[str, int], None] = lambda kind, n: None

    async def call(
        self,
        scope: Scope,
        use_case: Callable[..., Awaitable[T]],
        credentials: Credentials,
        *args: Any,
    ) -> T:
        """`await use_case(uow_factory, security, credentials, *args)`. Once the caller is
        known (the use case got past authentication), its api_key goes to the access log."""
        try:
            result = await use_case(self.uow_factory, self.security, credentials, *args)
        except (NotAuthenticated, AccessDenied, ServiceUnavailable):
            raise
        except (DomainError, HTTPException):
            self._note_caller(scope, credentials)
            raise
        self._note_caller(scope, credentials)
        return result

    def _note_caller(self, scope: Scope, credentials: Credentials) -> None:
        if isinstance(credentials, BearerCredentials):
            scope["tenant_api_key"] = self.security.verifier.api_key_of(credentials.token) or ""
        elif isinstance(credentials, BasicCredentials | SessionCredentials):
            scope["tenant_api_key"] = credentials.api_key
        # (an operator's: the admin routes name the token, `admin:<name>`)


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(_encode(content), status_code=status_code, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body: 413 past `limit` bytes (declared or streamed), through the error table."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_input(request: Request, limit: int, parse: Callable[[bytes], T]) -> Callable[[], T]:
    """The body, read now (413 past `limit`), and the function that parses it, for the use case
    to call once the caller is known (415 for another media type, 400 from `parse`)."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type")
    return lambda: parse(json_content(content_type, body))


def json_content(content_type: str | None, body: bytes) -> bytes:
    """A body that must carry JSON: 415 for a body of any other media type (or of none
    declared). No body and no Content-Type is a missing body: parse_object's 400."""
    if (content_type and not is_json_media_type(content_type)) or (not content_type and body):
        raise HTTPException(415)
    return body


def query(scope: Scope) -> dict[str, str]:
    """The query string's parameters, the last of a repeated one winning: what Starlette's
    `request.query_params` holds, without the multi-dict it builds around it (a tenth of the
    list's time in the profile). A query with nothing escaped (no `%`, no `+`) is split here:
    the same answer as `parse_qsl` (a property test checks it) in a sixth of its time."""
    raw = scope["query_string"].decode("latin-1")
    if "%" in raw or "+" in raw:
        return dict(parse_qsl(raw, keep_blank_values=True))
    params = {}
    for part in raw.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[name] = value
    return params


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), without Starlette's Headers."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Endpoint:
    """The ASGI app of one path: the handler of the request's method (HEAD is GET's), its
    response, and for whatever it raises the answer of the error table (api/errors.py); a
    method the path has not is 405 with Allow."""

    __slots__ = ("allow", "handlers", "template")

    def __init__(self, template: str, handlers: dict[str, Handler]) -> None:
        if "GET" in handlers:
            handlers.setdefault("HEAD", handlers["GET"])
        self.template = template
        self.handlers = handlers
        self.allow = {"Allow": ", ".join(handlers)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = self.template
        request = Request(scope, receive)
        try:
            handler = self.handlers.get(scope["method"])
            if handler is None:
                raise HTTPException(405, headers=self.allow)
            response = await handler(request)
        except Exception as exc:  # noqa: BLE001 - every failure gets its answer from the table
            response = error_response(request, exc)
        await response(scope, receive, send)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's answer where no route matches."""
    await error_response(Request(scope, receive), HTTPException(404))(scope, receive, send)


def route(path: str, **handlers: Handler) -> Route:
    """One route for a path, dispatching on the method (see Endpoint)."""
    return Route(path, Endpoint(path, handlers))


def page_links(href: Callable[[int], str], page: int, total_pages: int) -> dict[str, Any]:
    """HAL `_links` of a page: self, first, last, and next / prev where they exist (a page past
    the end links back to the last one). `total_pages` is at least 1 (rules.page_count)."""
    links = {
        "self": {"href": href(page)},
        "first": {"href": href(1)},
        "last": {"href": href(total_pages)},
    }
    if page < total_pages:
        links["next"] = {"href": href(page + 1)}
    if 1 < page <= total_pages + 1:
        links["prev"] = {"href": href(page - 1)}
    return links


def base_url(settings: Settings, scope: Scope) -> str:
    """The public base for absolute links: configured, else the request's own origin."""
    if settings.public_base_url:
        return settings.public_base_url
    host = header(scope, b"host") or "{}:{}".format(*scope["server"])
    return f"{scope['scheme']}://{host}"
