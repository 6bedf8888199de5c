"""The hot reads, answered before the framework's routing and middleware: GET
/beta/chatapp-accounts/{provider}/{external_id}, the lookup behind every message routed to an
account, and GET of the account list.

Profiling under load showed Starlette's per-request machinery (routing, exception wrappers,
Request and Response objects) costing as much as the work itself. This layer sits inside the
observability layer (request ids, logs, metrics), before Starlette, and uses the same use cases,
the same presenters and the same error table (500s included) as the routed path; anything else
passes through to Starlette.
- GET by id is answered here in full: the credentials and the account in one read, awaited
  (services.reads: inline on SQLite, pipelined with other requests' reads on PostgreSQL).
- The list is answered by the body its route serves (`list_body`), called here directly
  rather than found by the router, and sent without Request or Response objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..domain import accounts
from ..domain.errors import AccountNotFound, DomainError, NotAuthenticated
from ..domain.models import Account, Provider
from ..security.jwt import SigningKey
from .accounts import PREFIX, account_json, list_body
from .auth import BasicOrBearerAuth, basic_credentials, split_authorization
from .errors import on_unexpected, problem_for, render
from .http import Services, header

_PATH = re.compile("^" + re.escape(PREFIX) + r"/(messenger|viber_service_msg|whatsapp)/([^/]+)\Z")
_PROVIDERS = {p.value: p for p in Provider}
_TEMPLATES = {p: f"{PREFIX}/{p.value}/{{external_id}}" for p in Provider}
_LIST_PATHS = frozenset((PREFIX, PREFIX + "/"))
_encode = msgspec.json.Encoder().encode


class HotReads:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.reads = services.reads
        auth = services.authenticate
        assert isinstance(auth, BasicOrBearerAuth)
        self.auth = auth
        self.list_body = list_body(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in _LIST_PATHS:
            scope["route_template"] = path
            try:
                body = await self.list_body(scope)
            except Exception as exc:  # noqa: BLE001 - answered by the error table
                await _fail(exc, scope, receive, send)
                return
            await _ok(body, send)
            return
        match = _PATH.match(path)
        if match is None:
            await self.app(scope, receive, send)
            return
        provider = _PROVIDERS[match.group(1)]
        scope["route_template"] = _TEMPLATES[provider]
        try:
            account = await self.account(scope, provider, match.group(2))
        except Exception as exc:  # noqa: BLE001 - answered by the error table
            await _fail(exc, scope, receive, send)
            return
        scope["tenant_api_key"] = account.api_key
        await _ok(_encode(account_json(account)), send)

    async def account(self, scope: Scope, provider: Provider, external_id: str) -> Account:
        """GET of one account, with Basic or Bearer credentials: one read either way."""
        authorization = header(scope, b"authorization")
        scheme, credentials = split_authorization(authorization)  # 401 when absent
        if scheme == "basic":
            api_key, api_secret = basic_credentials(authorization)
            try:
                return await accounts.get_account_with_basic_auth(
                    self.reads, api_key, api_secret, provider, external_id
                )
            except AccountNotFound:
                scope["tenant_api_key"] = api_key  # authenticated; the account is absent
                raise
        if scheme != "bearer":  # no credentials, or a scheme that is neither Basic nor Bearer
            raise NotAuthenticated()
        token, path = credentials, scope["path"]
        keys: list[SigningKey] = []

        def verify(lookup: Callable[[str], SigningKey | None]) -> SigningKey:
            keys.append(self.auth.bearer(token, path, lookup))
            return keys[-1]

        try:
            return await accounts.get_account_with_token(
                self.reads,
                self.auth.verifier.claimed_application_id(token),
                verify,
                provider,
                external_id,
            )
        finally:
            if keys:
                scope["tenant_api_key"] = keys[-1].api_key


async def _ok(body: bytes, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _fail(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """The answers the error table gives on the routed path (a logged 500 the last resort)."""
    if isinstance(exc, DomainError):
        response = render(Request(scope), problem_for(exc))
    else:
        response = await on_unexpected(Request(scope), exc)
    await response(scope, receive, send)
