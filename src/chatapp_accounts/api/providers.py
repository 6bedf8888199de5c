"""The live providers' callback routes (docs/providers.md, "Callbacks"), served when a channel
they serve is live:

- `GET /providers/meta/webhook`: Meta's subscription handshake (`hub.mode=subscribe`, the
  verify token): 200 with `hub.challenge` as plain text, otherwise 403.
- `POST /providers/meta/webhook`: Messenger (`object: page`) and WhatsApp
  (`object: whatsapp_business_account`). `X-Hub-Signature-256` is checked on the raw bytes
  before anything is parsed: missing or wrong, 401 and nothing stored.
- `POST /providers/rbm/webhook`: RBM's set-up request (`clientToken` and `secret`: 200 with the
  secret as plain text, 403 for another client token), then events (Pub/Sub push) whose
  `X-Goog-Signature` is checked over `message.data` before it is decoded.

A callback is answered 200 only once what it says is committed (domain/callbacks.py): one that
fails (the database is unreachable) is answered 503 and the provider sends it again. Callbacks
that arrive together are applied together, in one transaction, in the order they came
(`Gathered`): a commit for many rather than one each (on SQLite, 500 status callbacks a second
in transactions of their own put the sends' p99 from 112 ms to 480 ms; docs/benchmark.md). A
gathered transaction that fails is tried again callback by callback, so that one bad callback
fails alone. Malformed
JSON with a good signature is 400; an object of another kind is 200 and counted. No query
string of these routes is logged (the access log has the route template only)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..channels.meta_wire import META_OBJECTS, json_body, meta_events
from ..channels.rbm_wire import rbm_events
from ..domain.callbacks import CallbackCounts, apply_callbacks
from ..domain.errors import DomainError, ServiceUnavailable
from ..domain.ports import UnitOfWorkFactory
from ..domain.providers import ProviderEvent
from ..security.callbacks import (
    meta_handshake,
    meta_signature_valid,
    rbm_setup_secret,
    rbm_signature_valid,
)
from .http import Services, query, read_body, route

log = logging.getLogger("chatapp_accounts.providers")

OnCallback = Callable[[str, str, int], None]  # (provider, outcome, how many)

_OK = PlainTextResponse("EVENT_RECEIVED")


def _plain(status: int, text: str) -> Response:
    return PlainTextResponse(text, status_code=status)


GATHER = 32  # callbacks at most in one transaction (SQLite runs it inline: a short stall)


class Gathered:
    """Applies callbacks in transactions of many: a callback waits for the one being written
    (there is at most one at a time), then goes with all that came meanwhile."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory
        self._waiting: list[tuple[list[ProviderEvent], asyncio.Future[CallbackCounts]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def apply(self, events: list[ProviderEvent]) -> CallbackCounts:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CallbackCounts] = loop.create_future()
        self._waiting.append((events, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        return await future

    async def _write(self) -> None:
        batch: list[tuple[list[ProviderEvent], asyncio.Future[CallbackCounts]]] = []
        try:
            while self._waiting:
                await asyncio.sleep(0)  # the callbacks read this turn join in
                batch, self._waiting = self._waiting[:GATHER], self._waiting[GATHER:]
                await self._apply(batch)
        except BaseException as exc:  # (cancelled at shutdown): no callback left waiting
            for _, future in [*batch, *self._waiting]:
                if not future.done():
                    future.set_exception(ServiceUnavailable() if isinstance(exc, Exception)
                                         else asyncio.CancelledError())  # fmt: skip
            self._waiting = []
            raise

    async def _apply(
        self, batch: list[tuple[list[ProviderEvent], asyncio.Future[CallbackCounts]]]
    ) -> None:
        try:
            done = await apply_callbacks(self._uow_factory, [events for events, _ in batch])
        except ServiceUnavailable as exc:  # nothing would go one by one either
            _fail(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - each on its own: one bad fails alone
            if len(batch) == 1:
                # Answered 503 (the provider sends it again), the cause logged by its type only.
                log.error("a provider callback could not be applied: %s", type(exc).__name__)
                _fail(batch, exc if isinstance(exc, DomainError) else ServiceUnavailable())
                return
            for one in batch:
                await self._apply([one])
            return
        for (_, future), counts in zip(batch, done, strict=True):
            if not future.done():
                future.set_result(counts)


def _fail(batch: list[tuple[Any, asyncio.Future[CallbackCounts]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


async def _apply(gathered: Gathered, provider: str, events: list[ProviderEvent],
                 on_callback: OnCallback) -> Response:  # fmt: skip
    counts = await gathered.apply(events)
    for field in CallbackCounts.__struct_fields__:
        if value := getattr(counts, field):
            on_callback(provider, field, value)
    return _OK


def provider_routes(services: Services, on_callback: OnCallback) -> list[Route]:
    settings = services.settings
    gathered = Gathered(services.uow_factory)
    limit = settings.max_body_bytes
    live = settings.live_channels
    routes = []

    async def meta_handshake_route(request: Request) -> Response:
        params = query(request.scope)
        challenge = meta_handshake(
            params.get("hub.mode"),
            params.get("hub.verify_token"),
            params.get("hub.challenge"),
            settings.meta_verify_token,
        )
        if challenge is None:
            on_callback("meta", "handshake_refused", 1)
            return _plain(403, "Forbidden")
        return _plain(200, challenge)

    async def meta_callback(request: Request) -> Response:
        body = await read_body(request, limit)
        signature = request.headers.get("x-hub-signature-256")
        if not meta_signature_valid(body, signature, settings.meta_app_secret):
            on_callback("meta", "bad_signature", 1)
            return _plain(401, "Bad signature")
        on_callback("meta", "verified", 1)
        payload = json_body(body)
        if payload is None:
            on_callback("meta", "malformed", 1)
            return _plain(400, "Malformed JSON")
        if not isinstance(payload, dict) or payload.get("object") not in META_OBJECTS:
            on_callback("meta", "unknown_object", 1)
            return _OK
        return await _apply(gathered, "meta", meta_events(payload), on_callback)

    async def rbm_callback(request: Request) -> Response:
        body = await read_body(request, limit)
        payload = json_body(body)
        if not isinstance(payload, dict):
            on_callback("rbm", "malformed", 1)
            return _plain(400, "Malformed JSON")
        if "clientToken" in payload and "message" not in payload:
            token, secret = payload.get("clientToken"), payload.get("secret")
            if isinstance(token, str) and isinstance(secret, str):
                secret = rbm_setup_secret(token, secret, settings.rbm_client_token)
            else:
                secret = None
            if secret is None:
                on_callback("rbm", "handshake_refused", 1)
                return _plain(403, "Forbidden")
            return _plain(200, secret)
        message = payload.get("message")
        data = message.get("data") if isinstance(message, dict) else None
        signature = request.headers.get("x-goog-signature")
        if not isinstance(data, str) or not rbm_signature_valid(
            data, signature, settings.rbm_client_token
        ):
            on_callback("rbm", "bad_signature", 1)
            return _plain(401, "Bad signature")
        on_callback("rbm", "verified", 1)
        try:
            decoded = json_body(base64.b64decode(data, validate=True))
        except (ValueError, binascii.Error):
            decoded = None
        if decoded is None:
            on_callback("rbm", "malformed", 1)
            return _plain(400, "Malformed event data")
        return await _apply(gathered, "rbm", rbm_events(payload, decoded), on_callback)

    if live & {"messenger", "whatsapp"}:
        routes.append(route("/providers/meta/webhook", GET=meta_handshake_route,
                            POST=meta_callback))  # fmt: skip
    if "rcs" in live:
        routes.append(route("/providers/rbm/webhook", POST=rbm_callback))
    return routes
