"""The request's id, set on the scope by the observability middleware."""

from __future__ import annotations

import os

from starlette.requests import Request


def request_id(request: Request) -> str:
    rid = request.scope.get("request_id")
    return rid if isinstance(rid, str) else os.urandom(16).hex()
