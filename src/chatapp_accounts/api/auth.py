"""Who is calling: Basic auth (`api_key:api_secret`) on both APIs."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from ..domain.errors import NotAuthenticated
from ..domain.models import Tenant
from ..domain.ports import UnitOfWorkFactory
from ..domain.tenants import authenticate

_MAX_HEADER = 1024


def basic_credentials(header: str | None) -> tuple[str, str]:
    """Split `Basic base64(key:secret)`; anything else is NotAuthenticated."""
    if not header or len(header) > _MAX_HEADER:
        raise NotAuthenticated()
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise NotAuthenticated()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotAuthenticated() from None
    api_key, sep, api_secret = decoded.partition(":")
    if not sep or not api_key or not api_secret:
        raise NotAuthenticated()
    return api_key, api_secret


class BasicAuth:
    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    def __call__(self, request: Request) -> Tenant:
        api_key, api_secret = basic_credentials(request.headers.get("authorization"))
        return authenticate(self._uow_factory, api_key, api_secret)
