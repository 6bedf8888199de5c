"""Who is calling. Basic (`api_key:api_secret`) on both APIs; Bearer (an application JWT) on the
External Accounts API, where the tenant is the application's owner."""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Callable

from starlette.requests import Request

from ..domain.errors import AccessDenied, NotAuthenticated
from ..domain.models import Tenant
from ..domain.ports import UnitOfWorkFactory
from ..domain.tenants import authenticate
from ..security.jwt import AclDenied, JwtVerifier, SigningKey, TokenRejected

log = logging.getLogger("chatapp_accounts.auth")
_MAX_HEADER = 16 * 1024
_MEMO_MAX = 256


def split_authorization(header: str | None) -> tuple[str, str]:
    """(lower-case scheme, credentials) of an Authorization header; NotAuthenticated if none."""
    if not header or len(header) > _MAX_HEADER:
        raise NotAuthenticated()
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()


def basic_credentials(header: str | None) -> tuple[str, str]:
    """Split `Basic base64(key:secret)`; anything else is NotAuthenticated."""
    scheme, encoded = split_authorization(header)
    if scheme != "basic":
        raise NotAuthenticated()
    decode = _decode_recent if len(encoded) <= _MEMO_MAX else _decode_basic
    credentials = decode(encoded)
    if credentials is None:
        raise NotAuthenticated()
    return credentials


def _decode_basic(encoded: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    api_key, sep, api_secret = decoded.partition(":")
    if not sep or not api_key or not api_secret:
        return None
    return api_key, api_secret


# A client sends the same header on every request: decoded once (bounded, sane lengths only).
_decode_recent = functools.lru_cache(maxsize=4096)(_decode_basic)


class BasicAuth:
    """The Application API's authentication: Basic only."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    def __call__(self, request: Request) -> Tenant:
        api_key, api_secret = basic_credentials(request.headers.get("authorization"))
        tenant = authenticate(self._uow_factory, api_key, api_secret)
        request.scope["tenant_api_key"] = tenant.api_key
        return tenant


class BasicOrBearerAuth(BasicAuth):
    """The External Accounts API's authentication: Basic, or an application's RS256 JWT."""

    def __init__(self, uow_factory: UnitOfWorkFactory, verifier: JwtVerifier) -> None:
        super().__init__(uow_factory)
        self.verifier = verifier

    def __call__(self, request: Request) -> Tenant:
        tenant = self.tenant_for(request.headers.get("authorization"), request.scope["path"])
        request.scope["tenant_api_key"] = tenant.api_key
        return tenant

    def bearer(
        self, token: str, path: str, lookup: Callable[[str], SigningKey | None] | None = None
    ) -> SigningKey:
        """Verify a Bearer token: 401 and 403 in the domain's words."""
        try:
            return self.verifier.verify(token, path, lookup)
        except TokenRejected as exc:
            log.info("bearer token rejected: %s", exc)  # the reason, never the token
            raise NotAuthenticated() from None
        except AclDenied:
            raise AccessDenied() from None

    def tenant_for(self, header: str | None, path: str) -> Tenant:
        scheme, token = split_authorization(header)
        if scheme != "bearer":
            api_key, api_secret = basic_credentials(header)
            return authenticate(self._uow_factory, api_key, api_secret)
        key = self.bearer(token, path)
        return Tenant(key.tenant_id, key.api_key)
