"""Who a request says it is: its Authorization header, parsed once into a value the use cases
take (domain.models.Credentials). Basic (`api_key:api_secret`) on both APIs; Bearer (an
application JWT) on the External Accounts API. Whether the credentials are good is the use
case's to decide (domain.tenants.authenticate)."""

from __future__ import annotations

import base64
import binascii
import functools

from starlette.types import Scope

from ..domain.errors import NotAuthenticated
from ..domain.models import BasicCredentials, BearerCredentials, Credentials
from .http import header

_MAX_HEADER = 16 * 1024
_MEMO_MAX = 256


def credentials(scope: Scope, *, bearer: bool = True) -> Credentials:
    """The request's credentials; NotAuthenticated (401) when there are none, when they are
    malformed, or when they are a Bearer token where only Basic is taken (`bearer=False`)."""
    value = header(scope, b"authorization")
    if not value or len(value) > _MAX_HEADER:
        raise NotAuthenticated()
    scheme, _, rest = value.partition(" ")
    scheme, rest = scheme.lower(), rest.strip()
    if scheme == "basic":
        decode = _decode_recent if len(rest) <= _MEMO_MAX else _decode_basic
        basic = decode(rest)
        if basic is not None:
            return BasicCredentials(basic.api_key, basic.api_secret, scope["path"])
    elif scheme == "bearer" and bearer and rest:
        return BearerCredentials(rest, scope["path"])
    raise NotAuthenticated()


def _decode_basic(encoded: str) -> BasicCredentials | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    api_key, sep, api_secret = decoded.partition(":")
    if not sep or not api_key or not api_secret:
        return None
    return BasicCredentials(api_key, api_secret)


# A client sends the same header on every request: decoded once (bounded, sane lengths only).
_decode_recent = functools.lru_cache(maxsize=4096)(_decode_basic)
