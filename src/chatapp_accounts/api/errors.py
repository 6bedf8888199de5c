"""The one table that turns errors into answers, in the shape of the API that was called.

The External Accounts API and the Application API v2 spell their errors differently; which
one a request belongs to is decided by its path. Registered once, in the app factory.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..domain.errors import (
    AccessDenied,
    AccountAlreadyRegistered,
    AccountNotFound,
    AdminTokenExists,
    AdminTokenNotFound,
    ApplicationNotFound,
    CannotLink,
    CannotUnlink,
    ContentRemoved,
    DomainError,
    InvalidChannelParams,
    InvalidClientRef,
    InvalidInput,
    InvalidJson,
    InvalidMessageParams,
    InvalidMessageType,
    InvalidRecipient,
    InvalidSender,
    LinkConflict,
    MessageNotFound,
    MessageRejected,
    NotAuthenticated,
    PhoneNumberIdTaken,
    RedactInvalid,
    RedactNotFound,
    RedactPremature,
    RedactUnsupportedProduct,
    ServiceUnavailable,
    TenantNotFound,
    TenantSuspended,
    Throttled,
    UnlinkConflict,
    UnsupportedChannel,
    WebhookNotFound,
)
from .request_id import request_id

log = logging.getLogger("chatapp_accounts.api")

APPLICATIONS_PREFIX = "/v2/applications"
# The External Accounts API takes both schemes; the Application API only Basic, as Vonage's.
CHALLENGES = (
    'Basic realm="chatapp-accounts", charset="UTF-8", Bearer realm="chatapp-accounts"',
    'Basic realm="chatapp-accounts", charset="UTF-8"',
)


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    kind: str
    detail: str
    invalid: list[dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


# kind -> (type, title), per API.
_ACCOUNTS = "https://www.nexmo.com/messages/Errors#"
_APPS = "https://developer.nexmo.com/api-errors"
_KINDS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "invalid": (
        (_ACCOUNTS + "InvalidParams", "Your request parameters didn't validate."),
        (_APPS + "/application#payload-validation", "Bad Request"),
    ),
    "unauthorized": (
        ("", "Unauthorised"),
        (_APPS + "#unauthorized", "Invalid credentials supplied"),
    ),
    "forbidden": ((_ACCOUNTS + "Forbidden", "Forbidden"), (_APPS + "#forbidden", "Forbidden")),
    "acl": (
        (
            _ACCOUNTS + "Forbidden",
            "Wrong authentication - You are not authorised to access this resource",
        ),
        (_APPS + "#forbidden", "Forbidden"),
    ),
    "not_found": ((_ACCOUNTS + "NotFound", "Not Found"), (_APPS + "#not-found", "Not Found")),
    "conflict": (
        (_ACCOUNTS + "Conflict", "Application conflict"),
        (_APPS + "#conflict", "Conflict"),
    ),
    "method": (
        (_ACCOUNTS + "MethodNotAllowed", "Method Not Allowed"),
        (_APPS + "#wrong-verb", "Request method not allowed"),
    ),
    "too_large": (
        (_ACCOUNTS + "PayloadTooLarge", "Payload Too Large"),
        (_APPS + "#payload-too-large", "Payload Too Large"),
    ),
    "media_type": (
        (_ACCOUNTS + "UnsupportedMediaType", "Unsupported Media Type"),
        (_APPS + "#content-type-header", "Unsupported Content-Type header"),
    ),
    "gone": ((_ACCOUNTS + "Gone", "Gone"), (_APPS + "#gone", "Gone")),
    "internal": (
        (_ACCOUNTS + "InternalError", "Internal Server Error"),
        (_APPS + "#internal-error", "Internal Server Error"),
    ),
    "unavailable": (
        (_ACCOUNTS + "ServiceUnavailable", "Service Unavailable"),
        (_APPS + "#service-unavailable", "Service Unavailable"),
    ),
    "throttled": (
        (_ACCOUNTS + "Throttled", "Too Many Requests"),
        (_APPS + "#throttled", "Too Many Requests"),
    ),
}

# The table: domain error -> (status, kind).
ERROR_TABLE: dict[type[DomainError], tuple[int, str]] = {
    InvalidInput: (400, "invalid"),
    NotAuthenticated: (401, "unauthorized"),
    AccessDenied: (403, "acl"),
    AccountAlreadyRegistered: (403, "forbidden"),
    PhoneNumberIdTaken: (403, "forbidden"),  # (operators provision numbers: 409 in ADMIN_TABLE)
    CannotLink: (403, "forbidden"),
    CannotUnlink: (403, "forbidden"),
    AccountNotFound: (404, "not_found"),
    ApplicationNotFound: (404, "not_found"),
    LinkConflict: (409, "conflict"),
    UnlinkConflict: (409, "conflict"),
    ContentRemoved: (410, "gone"),
    Throttled: (429, "throttled"),
    ServiceUnavailable: (503, "unavailable"),
}

_HTTP_KINDS = {
    404: ("not_found", "No such resource"),
    405: ("method", ""),
    413: ("too_large", "The request body is larger than this server accepts"),
    415: ("media_type", "Unsupported Content-Type header provided. Must be 'application/json'"),
}


def rate_headers(exc: Throttled) -> dict[str, str]:
    """A 429's headers, on every API (docs/limits.md): the tenant's limit per second on the
    API, what is left of it, when it resets (Unix time in milliseconds, as the Messages spec
    shows it) and the seconds to wait."""
    return {
        "X-RateLimit-Limit": str(exc.limit),
        "X-RateLimit-Remaining": str(exc.remaining),
        "X-RateLimit-Reset": str(math.ceil(exc.reset_at * 1000)),
        "Retry-After": str(max(1, math.ceil(exc.retry_after))),
    }


def problem_for(exc: DomainError) -> Problem:
    status, kind = ERROR_TABLE[type(exc)]
    invalid = None
    if isinstance(exc, InvalidInput):
        invalid = [{"name": p.name, "reason": p.reason} for p in exc.params]
    headers = rate_headers(exc) if isinstance(exc, Throttled) else {}
    return Problem(status, kind, exc.detail, invalid, headers)


def render(request: Request, problem: Problem) -> Response:
    is_apps = request.scope["path"].startswith(APPLICATIONS_PREFIX)
    type_, title = _KINDS[problem.kind][1 if is_apps else 0]
    headers = problem.headers
    if problem.status == 401:
        headers = {**headers, "WWW-Authenticate": CHALLENGES[1 if is_apps else 0]}
    elif problem.status == 503:
        headers = {**headers, "Retry-After": "1"}
    body: dict[str, Any]
    if problem.kind == "unauthorized" and not is_apps:
        # docs/decisions.md: exactly this body.
        body = {"title": title, "detail": problem.detail}
    elif is_apps:
        detail = problem.detail
        if problem.kind == "invalid":
            detail = "The request failed due to validation errors"
        elif problem.kind == "unauthorized":
            detail = "You did not provide correct credentials."
        body = {"type": type_, "title": title, "detail": detail, "instance": request_id(request)}
        if problem.invalid is not None:
            body["invalid_parameters"] = problem.invalid
    else:
        body = {"type": type_, "title": title, "detail": problem.detail}
        body["instance"] = request_id(request)
        if problem.invalid is not None:
            body["invalid_params"] = problem.invalid
    return Response(
        msgspec.json.encode(body),
        status_code=problem.status,
        headers=headers,
        media_type="application/json",
    )


# The Messages API, the sandbox and the web inbox answer in the Messages spec's shapes
# (docs/messages.md; the inbox shows them as HTML).
MESSAGES_PREFIXES = ("/v1/messages", "/sandbox/v1", "/inbox")
# Vonage's Redact API (api/redact.py): problem+json, in its reference's types and titles.
REDACT_PREFIX = "/v1/redact"
_NEXMO = "https://developer.nexmo.com/api-errors"
REDACT_TABLE: dict[type[DomainError], tuple[int, str, str]] = {
    RedactInvalid: (422, _NEXMO + "#invalid-json", "Invalid JSON"),
    RedactUnsupportedProduct: (403, _NEXMO + "/redact#unsupported-product", "Unsupported product"),
    RedactNotFound: (404, _NEXMO + "#invalid-id", "Invalid ID"),
    RedactPremature: (403, _NEXMO + "/redact#premature-redaction", "Premature redaction"),
    NotAuthenticated: (401, _NEXMO + "#unauthorized", "Invalid credentials supplied"),
    ServiceUnavailable: (503, _NEXMO + "#service-unavailable", "Service Unavailable"),
    Throttled: (429, _NEXMO + "#throttled", "Too Many Requests"),
}
_VONAGE = "https://developer.vonage.com/api-errors"
MESSAGES_TABLE: dict[type[DomainError], tuple[int, str, str]] = {
    InvalidJson: (422, _VONAGE + "#invalid-json", "The request body did not contain valid JSON"),
    UnsupportedChannel: (422, _VONAGE + "/messages#1100", "Unsupported channel"),
    InvalidChannelParams: (422, _VONAGE + "/messages#1110", "Invalid channel parameters"),
    InvalidSender: (422, _VONAGE + "/messages#1120", "Invalid sender"),
    InvalidRecipient: (422, _VONAGE + "/messages#1130", "Invalid recipient"),
    InvalidMessageType: (422, _VONAGE + "/messages#1140", "Invalid message type"),
    InvalidMessageParams: (422, _VONAGE + "/messages#1150", "Invalid params"),
    InvalidClientRef: (422, _VONAGE + "/messages#1060", "Invalid client reference"),
    AccessDenied: (403, _VONAGE + "#forbidden", "Forbidden"),
    MessageNotFound: (404, _VONAGE + "#not-found", "Not Found"),
    WebhookNotFound: (404, _VONAGE + "#not-found", "Not Found"),
    ContentRemoved: (410, _VONAGE + "#gone", "Content removed"),
    AccountNotFound: (404, _VONAGE + "#not-found", "Not Found"),  # (the sandbox's faults)
    ServiceUnavailable: (503, _VONAGE + "#service-unavailable", "Service Unavailable"),
    Throttled: (429, _VONAGE + "/messages#1000", "Throttled"),
}
# The spec's 401, as its example gives it.
MESSAGES_401 = {
    "type": _VONAGE + "/#unathorized",
    "title": "You did not provide correct credentials.",
    "detail": "Check that you're using the correct credentials, and that your account has this "
    "feature enabled",
}
_MESSAGES_HTTP = {
    404: ("#not-found", "Not Found", "No such resource"),
    405: ("#wrong-verb", "Method Not Allowed", ""),
    413: ("#payload-too-large", "Payload Too Large", _HTTP_KINDS[413][1]),
    415: ("#content-type-header", "Unsupported Media Type", _HTTP_KINDS[415][1]),
}


def _messages_response(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    body: dict[str, Any]
    if isinstance(exc, NotAuthenticated):
        status, body = 401, {**MESSAGES_401}
        headers["WWW-Authenticate"] = CHALLENGES[0]
    elif isinstance(exc, DomainError) and type(exc) in MESSAGES_TABLE:
        status, type_, title = MESSAGES_TABLE[type(exc)]
        body = {"type": type_, "title": title, "detail": exc.detail}
        if isinstance(exc, MessageRejected) and exc.params:
            body["invalid_parameters"] = [{"name": p.name, "reason": p.reason} for p in exc.params]
        if status == 503:
            headers["Retry-After"] = "1"
        elif isinstance(exc, Throttled):
            headers.update(rate_headers(exc))
    elif isinstance(exc, HTTPException) and exc.status_code in _MESSAGES_HTTP:
        status = exc.status_code
        anchor, title, detail = _MESSAGES_HTTP[status]
        if status == 405:
            detail = f"Request method '{request.method}' not supported"
            headers.update(exc.headers or {})
        body = {"type": _VONAGE + anchor, "title": title, "detail": detail}
    elif isinstance(exc, (DomainError, HTTPException)):
        # Another domain error (a sandbox listing's bad query is a MessageRejected above).
        status = (
            exc.status_code
            if isinstance(exc, HTTPException)
            else ERROR_TABLE.get(type(exc), (422, ""))[0]
        )
        body = {"type": _VONAGE, "title": "Bad Request", "detail": str(getattr(exc, "detail", ""))}
    else:
        _log_unexpected(request, exc)
        status = 500
        body = {"type": _VONAGE + "#internal-error", "title": "Internal Server Error",
                "detail": "Something went wrong on our side"}  # fmt: skip
    body["instance"] = request_id(request)
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


# The admin API (this project's own, docs/operations.md) answers in RFC 9457 problem+json:
# `type` (a URN of the error's kind), `title`, `detail`, `instance` (the request's id), and
# `invalid_parameters` for a 400: the Application API v2's shape, with its own types.
ADMIN_PREFIX = "/admin/v1"
_ADMIN_TYPE = "urn:chatapp-accounts:admin:"
ADMIN_TABLE: dict[type[DomainError], tuple[int, str]] = {
    **ERROR_TABLE,
    TenantNotFound: (404, "not-found"),
    AdminTokenNotFound: (404, "not-found"),
    AdminTokenExists: (409, "conflict"),
    RedactNotFound: (404, "not-found"),
    RedactPremature: (409, "conflict"),  # still queued: redact it once it is sent
    WebhookNotFound: (404, "not-found"),
    ContentRemoved: (410, "gone"),
    # A tenant's accounts (the External Accounts API's 403s are no scope's refusal here).
    TenantSuspended: (409, "conflict"),
    AccountAlreadyRegistered: (409, "conflict"),
    PhoneNumberIdTaken: (409, "conflict"),
    CannotLink: (422, "unprocessable"),  # no such account, or application with messages
    CannotUnlink: (422, "unprocessable"),
}
_ADMIN_KINDS = {
    400: ("invalid", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    410: ("gone", "Gone"),
    413: ("too-large", "Payload Too Large"),
    415: ("media-type", "Unsupported Media Type"),
    429: ("throttled", "Too Many Requests"),  # (ERROR_TABLE's; operators are not limited)
    422: ("unprocessable", "Unprocessable Content"),
    500: ("internal", "Internal Server Error"),
    503: ("unavailable", "Service Unavailable"),
}
ADMIN_CHALLENGE = 'Bearer realm="chatapp-accounts admin"'


def _admin_response(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    invalid = None
    if isinstance(exc, DomainError) and type(exc) in ADMIN_TABLE:
        status = ADMIN_TABLE[type(exc)][0]
        detail = exc.detail
        if isinstance(exc, InvalidInput):
            invalid = [{"name": p.name, "reason": p.reason} for p in exc.params]
        elif isinstance(exc, NotAuthenticated):
            detail = "An admin token (Authorization: Bearer) is missing, unknown or revoked"
    elif isinstance(exc, HTTPException) and exc.status_code in _ADMIN_KINDS:
        status = exc.status_code
        detail = _HTTP_KINDS.get(status, ("", str(exc.detail)))[1]
        if status == 405:
            detail = f"Request method '{request.method}' not supported"
            headers.update(exc.headers or {})
    else:
        _log_unexpected(request, exc)
        status, detail = 500, "Something went wrong on our side"
    if status == 401:
        headers["WWW-Authenticate"] = ADMIN_CHALLENGE
    elif status == 503:
        headers["Retry-After"] = "1"
    kind, title = _ADMIN_KINDS[status]
    body: dict[str, Any] = {
        "type": _ADMIN_TYPE + kind,
        "title": title,
        "detail": detail,
        "instance": request_id(request),
    }
    if invalid is not None:
        body["invalid_parameters"] = invalid
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def error_response(request: Request, exc: Exception) -> Response:
    """The answer to whatever a route raised: the table's for a domain error, the HTTP error's
    own (404, 405, 413, 415), else a logged 500 that says nothing of its cause."""
    if request.scope["path"].startswith(MESSAGES_PREFIXES):
        return _messages_response(request, exc)
    if request.scope["path"].startswith(ADMIN_PREFIX):
        return _admin_response(request, exc)
    if request.scope["path"].startswith(REDACT_PREFIX):
        return _redact_response(request, exc)
    if isinstance(exc, DomainError):
        return render(request, problem_for(exc))
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    return _unexpected(request, exc)


def _redact_response(request: Request, exc: Exception) -> Response:
    """The Redact API's problem+json: its own errors, else as the Messages API answers."""
    if not (isinstance(exc, DomainError) and type(exc) in REDACT_TABLE):
        if isinstance(exc, HTTPException) and exc.status_code == 415:
            exc = RedactInvalid("body", "must be JSON (Content-Type: application/json)")
        else:
            return _messages_response(request, exc)
    status, type_, title = REDACT_TABLE[type(exc)]
    body: dict[str, Any] = {"type": type_, "title": title, "detail": exc.detail,
                            "instance": request_id(request)}  # fmt: skip
    if isinstance(exc, RedactInvalid):
        body["invalid_parameters"] = [{"name": p.name, "reason": p.reason} for p in exc.params]
    headers = {"WWW-Authenticate": 'Basic realm="chatapp-accounts", charset="UTF-8"'} if (
        status == 401) else {"Retry-After": "1"} if status == 503 else {}  # fmt: skip
    if isinstance(exc, Throttled):
        headers = rate_headers(exc)
    return Response(msgspec.json.encode(body), status_code=status, headers=headers,
                    media_type="application/problem+json")  # fmt: skip


def _http_error(request: Request, exc: HTTPException) -> Response:
    kind, detail = _HTTP_KINDS.get(exc.status_code, ("invalid", str(exc.detail)))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        detail = f"Request method '{request.method}' not supported"
    if kind == "invalid":
        return render(request, problem_for(InvalidInput.one("request", str(exc.detail))))
    return render(request, Problem(exc.status_code, kind, detail, None, headers))


def _unexpected(request: Request, exc: Exception) -> Response:
    _log_unexpected(request, exc)
    return render(request, Problem(500, "internal", "Something went wrong on our side"))


def _log_unexpected(request: Request, exc: Exception) -> None:
    log.error(
        "unhandled error on %s %s (request %s): %s",
        request.method,
        request.scope["path"],
        request_id(request),
        type(exc).__name__,
        exc_info=exc,
    )
