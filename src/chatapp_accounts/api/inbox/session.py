"""The web inbox's session and anti-forgery tokens (docs/inbox.md).

- The session is a cookie signed with itsdangerous (HMAC-SHA256, a key derived from the
  encryption keys, so every process of one deployment accepts it): the tenant's api_key and a
  binding to its secret's hash (domain SessionCredentials), never the secret. `HttpOnly`,
  `SameSite=Strict`, `Path=/inbox`, `Secure` when the request came over HTTPS, 12 hours.
- Every state-changing request carries an anti-forgery token: an HMAC of the session cookie
  (`X-CSRF-Token`, which htmx sends from the page's `hx-headers`, or a `csrf_token` form
  field). Signing in, before any session, is guarded by a random cookie that the form repeats
  (double submit). A POST whose `Origin` is another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ...domain.models import SessionCredentials

COOKIE = "chatapp_inbox"
LOGIN_COOKIE = "chatapp_inbox_login"
PATH = "/inbox"
MAX_AGE = 12 * 3600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class Sessions:
    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="chatapp-accounts/inbox-session")
        self._key = key

    def read(self, request: Request) -> SessionCredentials | None:
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data: Any = self._serializer.loads(value, max_age=MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        api_key, binding = data.get("k"), data.get("b")
        if not isinstance(api_key, str) or not isinstance(binding, str):
            return None
        return SessionCredentials(api_key, binding, request.scope["path"])

    def start(self, request: Request, response: Response, session: SessionCredentials) -> None:
        value = self._serializer.dumps({"k": session.api_key, "b": session.binding})
        _set(request, response, COOKIE, value, MAX_AGE)
        response.delete_cookie(LOGIN_COOKIE, path=PATH)

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")

    def csrf_token(self, request: Request) -> str:
        """The page's anti-forgery token: an HMAC of its session cookie."""
        cookie = request.cookies.get(COOKIE, "")
        return hmac.new(self._key, b"csrf\x00" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, sent: str | None) -> bool:
        return (
            bool(sent)
            and same_origin(request)
            and hmac.compare_digest(str(sent), self.csrf_token(request))
        )

    # Signing in: no session yet. A random value in a cookie, repeated by the form.

    def login_token(self, request: Request, response: Response) -> str:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        _set(request, response, LOGIN_COOKIE, token, 3600)
        return token

    def login_ok(self, request: Request, sent: str | None) -> bool:
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return (
            bool(cookie and sent)
            and same_origin(request)
            and hmac.compare_digest(cookie, str(sent))
        )


def same_origin(request: Request) -> bool:
    """No `Origin` (same-origin form posts from older browsers), or this server's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"{request.url.scheme}://{host}",)


def _set(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
