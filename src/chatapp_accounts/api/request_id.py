"""Every request gets an id: an incoming X-Request-Id is kept (when sane), else one is made.

It is echoed in the X-Request-Id response header and used as `instance` in error bodies.
"""

from __future__ import annotations

import os
import re
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}\Z")


def request_id(request: Request) -> str:
    rid = request.scope.get("request_id")
    return rid if isinstance(rid, str) else uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == HEADER:
                incoming = value
                break
        rid = (
            incoming.decode("ascii") if incoming and _SANE.match(incoming) else os.urandom(16).hex()
        )
        scope["request_id"] = rid
        encoded = rid.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", encoded)]
            await send(message)

        await self.app(scope, receive, send_with_id)
