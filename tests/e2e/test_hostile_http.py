"""What reaches the real server over a socket: long URLs and headers, and bytes that are not
HTTP. Requests that are not valid HTTP/1.1 are refused by the HTTP server itself (uvicorn) with
a plain 400 before either API sees them; everything else gets the API's JSON error."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from .server import base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e


def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_raw_requests(tmp_path: object) -> None:
    env = base_env(CHATAPP_DATABASE_URL=f"sqlite:///{tmp_path}/raw.sqlite3")
    creds = new_tenant(env)
    auth = base64.b64encode(f"{creds['api_key']}:{creds['api_secret']}".encode())
    with running_server(env) as server:
        port = int(server.url.rsplit(":", 1)[1])

        def get(target: bytes, *headers: bytes) -> tuple[int, bytes]:
            lines = [b"GET " + target + b" HTTP/1.1", b"Host: x", b"Connection: close", *headers]
            return exchange(port, b"\r\n".join(lines) + b"\r\n\r\n")

        status, body = get(
            b"/beta/chatapp-accounts/messenger/" + b"a" * 60_000, b"Authorization: Basic " + auth
        )
        assert status == 404 and json.loads(body)["title"] == "Not Found"
        for dotted in (
            b"/beta/chatapp-accounts/messenger/..",
            b"/beta/chatapp-accounts/messenger/../../v2/applications",
        ):
            status, body = get(
                dotted, b"Authorization: Basic " + auth
            )  # sent as is, not normalised
            assert status == 404 and json.loads(body)["title"] == "Not Found"
        status, body = get(b"/beta/chatapp-accounts", b"X-Big: " + b"b" * 100_000)
        assert status == 401 and json.loads(body)["title"] == "Unauthorised"
        for bad in (
            (b"/beta/chatapp-accounts/messenger/" + b"a" * 100_000,),
            (b"/beta/chatapp-accounts/messenger/\xff\xfe",),
            (b"/beta/chatapp-accounts", b"Authorization: Basic \x00"),
            (b"/beta/chatapp-accounts", b"Bad Header Name: x"),
        ):
            status, body = get(*bad)
            assert status == 400 and b"Traceback" not in body
        status, body = get(b"/beta/chatapp-accounts", b"Authorization: Basic " + auth)
        assert status == 200  # still serving
    assert "Traceback" not in server.output
