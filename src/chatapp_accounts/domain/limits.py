"""Per-tenant limits (docs/limits.md): each tenant's requests per second on each API, and its
messages per second on the Messages API, counted in whole seconds of the clock (a request at
12:00:00.250 counts in the second that began at 12:00:00.000). The settings give the defaults,
a tenant's own override (the admin API, `tenants limits`) wins. Over the limit: Throttled (429).

Which API a request is on is its path's: the limit it counts against is that API's. The
Messages API sends at most one message a request, so its requests are its messages."""

from __future__ import annotations

from typing import NamedTuple

from .errors import InvalidParam
from .models import TenantLimits

LIMIT_MAX = 1_000_000  # per second
ACCOUNTS = "accounts"
APPLICATIONS = "applications"
MESSAGES = "messages"
SANDBOX = "sandbox"
REDACT = "redact"
INBOX = "inbox"
_APIS = (
    ("/v1/messages", MESSAGES),
    ("/beta/chatapp-accounts", ACCOUNTS),
    ("/v2/applications", APPLICATIONS),
    ("/sandbox/", SANDBOX),
    ("/v1/redact", REDACT),
    ("/inbox", INBOX),
)


class Claim(NamedTuple):
    """A process asks for `want` of a tenant's limit on an API in one second."""

    tenant_id: int
    api: str
    second: int  # seconds since the epoch
    want: int


class Taken(NamedTuple):
    granted: int  # of `want`: what was left of the limit
    limit: int  # the tenant's limit on the API (its own, else the default)


def api_of(path: str) -> str | None:
    """The API a request's path is on; None for none (the command line's own calls)."""
    for prefix, api in _APIS:
        if path.startswith(prefix):
            return api
    return None


def limit_of(own: TenantLimits | None, api: str, requests: int, messages: int) -> int:
    """The limit per second that holds for a tenant with these limits of its own (None: none)
    on `api`, the defaults being `requests` on each API and `messages` on the Messages API."""
    if api == MESSAGES:
        return (own.messages_per_second if own else None) or messages
    return (own.requests_per_second if own else None) or requests


def refusals(limits: TenantLimits) -> list[InvalidParam]:
    """What is wrong with these overrides (None is the settings' default)."""
    bad = []
    for name in ("requests_per_second", "messages_per_second"):
        value = getattr(limits, name)
        if value is not None and not (type(value) is int and 1 <= value <= LIMIT_MAX):
            bad.append(InvalidParam(name, f"a whole number from 1 to {LIMIT_MAX}, or null"))
    return bad
