"""The Graph channel against answers that are not what they should be (docs/providers.md): a
body of 10 MB, an empty one, JSON without the id, HTML, a connection that hangs, nothing
listening. Each is a Refusal with a clear detail, within the timeout; never an exception, never
a token in the detail. A loopback aiohttp server plays Graph."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web

from chatapp_accounts.channels.graph import GraphChannel
from chatapp_accounts.channels.http import ProviderClient
from chatapp_accounts.domain.models import OutboundMessage, SendJob
from chatapp_accounts.domain.providers import Refusal, SenderCredentials, SendTry, Taken

TOKEN = "EAAB-secret-token"


def _try(to: str) -> SendTry:
    message = OutboundMessage("whatsapp", "text", to, "447700900000", {"text": "hi"})
    job = SendJob(1, 1, message, "u-1", "u-1", "app", None, None, 1, 0.0, False, [], 0.0)
    return SendTry(job, SenderCredentials(TOKEN, "pn-1", "waba-1"))


async def _graph(request: web.Request) -> web.StreamResponse:
    to = (await request.json())["to"]
    if to == "big":
        return web.Response(body=b"x" * (10 * 1024 * 1024), status=200)
    if to == "hang":
        await asyncio.sleep(60)
    if to == "empty":
        return web.Response(body=b"", status=200)
    if to == "noid":
        return web.json_response({"messaging_product": "whatsapp", "messages": []})
    if to == "html":
        return web.Response(text="<html>Bad Gateway</html>", status=502, content_type="text/html")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in request.query
    return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": "wamid.1"}]})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _answers(*recipients: str, listening: bool = True) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        app = web.Application()
        app.router.add_post("/v21.0/{id}/messages", _graph)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        port = _free_port()
        if listening:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        client = ProviderClient("meta", timeout=1.0, concurrency=8)
        channel = GraphChannel("whatsapp", client, f"http://127.0.0.1:{port}/v21.0", 80.0)
        try:
            answers = await asyncio.gather(*(channel.submit(_try(to)) for to in recipients))
        finally:
            await channel.close()
            await runner.cleanup()
        return dict(zip(recipients, answers, strict=True))

    return asyncio.run(go())


def test_bad_answers_are_refusals_with_clear_details() -> None:
    got = _answers("ok", "big", "hang", "empty", "noid", "html")
    ok = got["ok"]
    assert isinstance(ok, Taken) and ok.provider_message_id == "wamid.1"
    assert [c.status for c in ok.changes] == ["submitted"]
    refused = {to: answer for to, answer in got.items() if isinstance(answer, Refusal)}
    assert set(refused) == {"big", "hang", "empty", "noid", "html"}
    assert refused["big"].detail == "Graph answered HTTP 200 with over 1 MiB"
    assert not refused["big"].retry and refused["big"].code == "1331"
    assert refused["hang"].retry and "no answer in time" in refused["hang"].detail
    assert not refused["empty"].retry and not refused["noid"].retry  # 2xx: it may be sent
    assert refused["html"].retry and "HTTP 502" in refused["html"].detail
    for answer in refused.values():
        assert TOKEN not in answer.detail and "<html>" not in answer.detail


def test_nothing_listening_is_a_transient_refusal() -> None:
    [answer] = _answers("ok", listening=False).values()
    assert isinstance(answer, Refusal) and answer.retry
    assert answer.detail == "Graph unreachable: connection failed (ClientConnectorError)"
