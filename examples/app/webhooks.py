"""The application's inbound webhook: a WSGI app (any framework's handler looks the same).
It checks the signature as Vonage documents it (a HS256 JWT signed with the account's
signature secret, whose payload_hash is the SHA-256 of the body), refuses what does not
verify with 401, records each inbound message and answers it through the Messages API."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

import jwt
from vonage_jwt import verify_signature

from .sending import send_text

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def verified(body: bytes, authorization: str, signature_secret: str) -> bool:
    token = authorization.removeprefix("Bearer ")
    if not token or not verify_signature(token, signature_secret):
        return False
    claims = jwt.decode(token, signature_secret, algorithms=["HS256"])
    return bool(claims.get("payload_hash") == hashlib.sha256(body).hexdigest())


class InboundHandler:
    """POST /inbound: verify, record, reply "You said: <text>" from the account written to."""

    def __init__(self, signature_secret: str, messages: Any) -> None:
        self.signature_secret = signature_secret
        self.messages = messages
        self.inbound: list[dict[str, Any]] = []  # what customers sent
        self.replies: list[str] = []  # the message_uuid of each answer
        self.refused = 0
        self.changed = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if not verified(body, environ.get("HTTP_AUTHORIZATION", ""), self.signature_secret):
            with self.changed:
                self.refused += 1
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return [b""]
        message = json.loads(body)
        reply = None
        if message.get("message_type") == "text":
            reply = send_text(self.messages, message["channel"], message["from"],
                              message["to"], f"You said: {message['text']}")  # fmt: skip
        with self.changed:
            self.inbound.append(message)
            if reply is not None:
                self.replies.append(reply)
            self.changed.notify_all()
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    def wait_for_inbound(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.inbound) >= count, timeout)
            return list(self.inbound)
