"""A webhook receiver for bench/messages.py: answers 200 at once and remembers, for each
webhook, when it arrived and what it was (message_uuid, status or inbound). Served by the
same server stack as chatapp-accounts. GET /stats: counts; GET /dump: every record, as JSON.

    python bench/receiver.py PORT
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec
import uvicorn

from chatapp_accounts.server import uvicorn_options

records: list[tuple[float, str, str]] = []  # (arrival, message_uuid, status or "inbound")
_decode = msgspec.json.Decoder().decode
_OK = [(b"content-length", b"0")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        arrived = time.time()
        hook = _decode(body)
        records.append((arrived, hook["message_uuid"], hook.get("status", "inbound")))
        await send({"type": "http.response.start", "status": 200, "headers": _OK})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/stats":
        counts: dict[str, int] = {}
        for _, _, kind in records:
            counts[kind] = counts.get(kind, 0) + 1
        payload = msgspec.json.encode({"total": len(records), "by_kind": counts})
    else:
        payload = msgspec.json.encode(records)
    headers = [
        (b"content-length", str(len(payload)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    uvicorn.run(
        app, **{**uvicorn_options(host="127.0.0.1", port=int(sys.argv[1])), "access_log": False}
    )
