"""The ceiling: a bare ASGI app that answers the same bytes as GET by id, with no auth and no
database, served by the same server with the same settings as `chatapp-accounts serve`."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from chatapp_accounts.server import uvicorn_options

BODY = (
    b'{"external_id":"000000001","api_key":"abcd1234","provider":"messenger",'
    b'"applications":[],"access_token":"token-000000001"}'
)
HEADERS = [(b"content-length", str(len(BODY)).encode()), (b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    # The same server, protocol and options as `chatapp-accounts serve`.
    uvicorn.run(app, **uvicorn_options(host="127.0.0.1", port=int(sys.argv[1])))
