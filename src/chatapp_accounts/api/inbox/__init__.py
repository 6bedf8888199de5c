"""The web inbox at /inbox (docs/inbox.md): server-rendered pages (Jinja2, autoescaped: message
text, names and payloads are data, never markup) that htmx swaps in part, updated live over one
server-sent event stream. Every action calls the same use case as the sandbox API does, with
the session's credentials (domain SessionCredentials) in place of an Authorization header.

Routes: the page (`/inbox`), its fragments (sidebar, messages, a message, a webhook), its
actions (compose as the customer, read, redeliver, edit and resend, fault switches; each a POST
with the anti-forgery token), the event stream, sign in and out, and the vendored static files.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import logging
import shlex
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ...channels.sandbox import reserved_recipients
from ...domain import accounts, messages, rules, sandbox, tenants, webhooks
from ...domain.errors import AccessDenied, DomainError, NotAuthenticated
from ...domain.models import (
    CHANNEL_PROVIDERS,
    BasicCredentials,
    MessageFilter,
    MessageRecord,
    PageRequest,
    SessionCredentials,
)
from ...domain.payloads import timestamp
from ...presenters import masked_headers, message_json
from .. import message_bodies
from ..errors import error_response
from ..http import Services, route
from .session import CSRF_FIELD, CSRF_HEADER, Sessions

log = logging.getLogger("chatapp_accounts.inbox")
PREFIX = "/inbox"
HERE = Path(__file__).parent
STATIC = HERE / "static"
# The vendored files and their SHA-256 (tests/unit/test_inbox_assets.py pins them too).
ASSETS = {
    "htmx-2.0.11.min.js": "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    "htmx-ext-sse-2.2.4.min.js": "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136",
}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
PAGE_SIZE = 50
EVENT_POLL_SECONDS = 0.5
EVENT_MIN_GAP_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
HEADERS = {
    # Nothing from another host, no inline script, no framing (docs/inbox.md).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # (no-referrer makes Chromium send `Origin: null`)
    "Cache-Control": "no-store",
}
_encode = msgspec.json.Encoder().encode
CHANNELS_OF = {provider: channel for channel, provider in CHANNEL_PROVIDERS.items()}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ts"] = lambda at: timestamp(at) if at else ""
    env.filters["pretty"] = _pretty
    env.filters["q"] = lambda value: urlencode({"q": value})
    return env


def conversation_query(channel: str, account: str, peer: str) -> str:
    """The search that is one conversation (domain/search.py)."""
    return f"channel:{channel} account:{account} customer:{peer}"


def is_conversation(query: MessageFilter) -> bool:
    return bool(query.channel and query.account and query.peer) and not (
        query.to or query.sender or query.status or query.message_type or query.words
    )


def curl_line(url: str, headers: dict[str, str], body: bytes) -> str:
    """An attempt as a curl command, its Authorization masked (the token signs a body for a
    minute only; the inbox never hands it out)."""
    parts = ["curl", "-X", "POST", url]
    for name, value in masked_headers(headers).items():
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", body.decode("utf-8", "replace")]
    return " ".join(shlex.quote(p) for p in parts)


def body_diff(before: bytes, after: bytes) -> list[str]:
    old = _pretty(json.loads(before)).splitlines()
    new = _pretty(json.loads(after)).splitlines()
    return list(difflib.unified_diff(old, new, "previous", "this", lineterm="", n=2))[2:]


def compose_body(form: FormData) -> bytes:
    """The compose form as `POST /sandbox/v1/inbound`'s body: the same parser checks it."""
    body: dict[str, Any] = {
        "channel": form.get("channel", ""),
        "to": form.get("to", ""),
        "from": form.get("from", ""),
        "message_type": form.get("message_type", "text"),
    }
    kind = body["message_type"]
    if kind == "text":
        body["text"] = form.get("text", "")
    elif kind in ("image", "video", "audio", "file"):
        body[kind] = {"url": form.get("url", "")}
        if form.get("text"):
            body[kind]["caption"] = form.get("text")
    elif kind == "location":
        body["location"] = {"lat": _number(form.get("lat")), "long": _number(form.get("long"))}
    if form.get("context"):
        body["context"] = form.get("context")
    if form.get("profile_name"):
        body["profile"] = {"name": form.get("profile_name")}
    return _encode(body)


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value  # the parser says what is wrong with it


def inbox_routes(services: Services, session_key: bytes) -> list[Route]:
    call = services.call
    env = _environment()
    sessions = Sessions(session_key)
    limit = services.settings.max_body_bytes
    static_files = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in MEDIA_TYPES}

    def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("csrf", sessions.csrf_token(request))
        html = env.get_template(template).render(prefix=PREFIX, **context)
        return Response(html, status, headers=HEADERS, media_type="text/html")

    def session(request: Request) -> SessionCredentials:
        found = sessions.read(request)
        if found is None:
            raise NotAuthenticated()
        return found

    def problem(request: Request, exc: Exception) -> Response:
        """A failure as the sandbox API answers it (api/errors.py's table), shown as HTML."""
        answer = error_response(request, exc)
        if answer.status_code == 401:
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": PREFIX + "/login"})
            return RedirectResponse(PREFIX + "/login", 303)
        shown = json.loads(bytes(answer.body)) if answer.body else {}
        return render(request, "_error.html", answer.status_code, problem=shown,
                      code=answer.status_code)  # fmt: skip

    def page(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def guarded(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except (DomainError, HTTPException) as exc:
                return problem(request, exc)
            return response

        return guarded

    def action(handler: Callable[[Request, FormData], Any]) -> Callable[[Request], Any]:
        """A POST: its form read (413 past the body limit), the anti-forgery token checked."""

        async def guarded(request: Request) -> Response:
            try:
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise HTTPException(413)
                async with request.form(max_files=0, max_fields=50) as form:
                    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
                    if not sessions.csrf_ok(request, str(sent) if sent else None):
                        raise AccessDenied("The anti-forgery token is missing or wrong.")
                    response: Response = await handler(request, form)
            except (DomainError, HTTPException) as exc:
                return problem(request, exc)
            return response

        return guarded

    # Reads -------------------------------------------------------------------------------

    async def sidebar_context(request: Request, creds: SessionCredentials) -> dict[str, Any]:
        scope = request.scope
        owned = await call(scope, accounts.list_accounts, creds,
                           lambda: PageRequest(1, 100))  # fmt: skip
        threads = await call(scope, messages.list_conversations, creds)
        by_account: dict[tuple[str, str], list[Any]] = {}
        for t in threads:
            by_account.setdefault((t.channel, t.account), []).append(t)
        shown = []
        for a in owned.items:
            channel = CHANNELS_OF[a.provider]
            shown.append(
                {
                    "channel": channel,
                    "provider": str(a.provider),
                    "id": a.external_id,
                    "name": a.name,
                    "linked": a.application_id is not None,
                    "threads": [
                        {
                            "peer": t.peer,
                            "messages": t.messages,
                            "last": t.last,
                            "q": conversation_query(t.channel, t.account, t.peer),
                        }
                        for t in by_account.pop((channel, a.external_id), [])
                    ],
                }
            )
        return {"accounts": shown, "total_accounts": owned.total_items}

    async def messages_context(request: Request, creds: SessionCredentials) -> dict[str, Any]:
        params = dict(request.query_params)
        params.setdefault("page_size", str(PAGE_SIZE))
        query = message_bodies.messages_query(params)
        found = await call(request.scope, messages.list_messages, creds, lambda: query)
        thread = is_conversation(query)
        items = list(reversed(found.items)) if thread else found.items
        return {
            "q": params.get("q", ""),
            "query": query,
            "thread": thread,
            "items": items,
            "page": found,
            "older": found.page_number < found.total_pages,
            "compose": _compose_defaults(query) if thread else None,
        }

    async def detail_context(request: Request, creds: SessionCredentials, uuid: str) -> Any:
        found = await call(request.scope, messages.get_message, creds, uuid)
        return {"m": found, "json": message_json(found), "can_read": _can_read(found)}

    async def index(request: Request) -> Response:
        creds = sessions.read(request)
        if creds is None:
            return RedirectResponse(PREFIX + "/login", 303)
        context = {
            "api_key": creds.api_key,
            **await sidebar_context(request, creds),
            **await messages_context(request, creds),
            "detail": None,
        }
        selected = request.query_params.get("m")
        if selected:
            context["detail"] = await detail_context(request, creds, selected)
        return render(request, "inbox.html", **context)

    async def sidebar(request: Request) -> Response:
        creds = session(request)
        return render(request, "_sidebar.html", **await sidebar_context(request, creds))

    async def listing(request: Request) -> Response:
        creds = session(request)
        return render(request, "_messages.html", **await messages_context(request, creds))

    async def one(request: Request) -> Response:
        creds = session(request)
        uuid = request.path_params["message_uuid"]
        return render(request, "_detail.html", **await detail_context(request, creds, uuid))

    async def webhook(request: Request) -> Response:
        creds = session(request)
        found = await call(request.scope, webhooks.webhook_detail, creds,
                           request.path_params["webhook_id"])  # fmt: skip
        record = found.record
        attempts = [
            {
                "a": a,
                "check": c,
                "headers": masked_headers(a.request_headers or {}),
                "curl": curl_line(a.url, a.request_headers, record.body)
                if a.request_headers
                else None,
            }
            for a, c in zip(record.attempts, found.checks, strict=True)
        ]
        return render(
            request,
            "_webhook.html",
            w=record,
            body=json.loads(record.body),
            attempts=attempts,
            previous=found.previous,
            diff=body_diff(found.previous.body, record.body) if found.previous else None,
        )

    # Actions -----------------------------------------------------------------------------

    def done(request: Request, text: str) -> Response:
        response = render(request, "_done.html", text=text)
        response.headers["HX-Trigger"] = "inbox:changed"
        return response

    async def compose(request: Request, form: FormData) -> Response:
        creds = session(request)
        raw = compose_body(form)
        uuid = await call(request.scope, messages.sandbox_inbound, creds,
                          lambda: message_bodies.inbound_message(raw))  # fmt: skip
        return done(request, f"Sent as the customer: {uuid}")

    async def read(request: Request, form: FormData) -> Response:
        creds = session(request)
        uuid = request.path_params["message_uuid"]
        await call(request.scope, messages.sandbox_read, creds, uuid)
        return done(request, f"Read by the customer: {uuid}")

    async def redeliver(request: Request, form: FormData) -> Response:
        creds = session(request)
        webhook_id = request.path_params["webhook_id"]
        await call(request.scope, webhooks.redeliver_own, creds, webhook_id)
        return done(request, f"Webhook {webhook_id} is pending again: it is sent now.")

    async def resend(request: Request, form: FormData) -> Response:
        creds = session(request)
        webhook_id = request.path_params["webhook_id"]
        raw = str(form.get("body", "")).encode()
        new = await call(request.scope, webhooks.resend_webhook, creds, webhook_id,
                         lambda: message_bodies.webhook_body(raw))  # fmt: skip
        return done(request, f"Webhook {new}: webhook {webhook_id} with the edited body.")

    max_delay = rules.sandbox_delay_max(services.settings.provider_timeout_seconds)

    def faults_page(request: Request, faults: Any, note: str | None = None) -> Response:
        path = request.path_params
        return render(request, "_faults.html", channel=path["channel"],
                      account=path["external_id"], faults=faults, note=note,
                      reserved=reserved_recipients(), max_delay=max_delay)  # fmt: skip

    async def get_faults(request: Request) -> Response:
        creds = session(request)
        path = request.path_params
        faults = await call(request.scope, sandbox.get_faults, creds, path["channel"],
                            path["external_id"])  # fmt: skip
        return faults_page(request, faults)

    async def set_faults(request: Request, form: FormData) -> Response:
        creds = session(request)
        path = request.path_params
        raw = _encode({"delay": _number(form.get("delay") or 0),
                       "fail": form.get("fail") or None})  # fmt: skip
        faults = await call(request.scope, sandbox.set_faults, creds, path["channel"],
                            path["external_id"], lambda: message_bodies.faults_body(raw),
                            max_delay)  # fmt: skip
        response = faults_page(request, faults, "Saved: the next sends from it obey them.")
        response.headers["HX-Trigger"] = "inbox:changed"
        return response

    # Signing in and out, events, files ----------------------------------------------------

    def login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
        """The sign-in form, with its anti-forgery cookie set (or kept) on the same answer."""
        response = Response(status_code=status, headers=HEADERS, media_type="text/html")
        token = sessions.login_token(request, response)
        html = env.get_template("login.html").render(prefix=PREFIX, csrf=token, error=error)
        response.body = response.render(html)
        response.headers["content-length"] = str(len(response.body))
        return response

    async def login_form(request: Request) -> Response:
        return login_page(request)

    async def login(request: Request) -> Response:
        async with request.form(max_files=0, max_fields=10) as form:
            api_key = str(form.get("api_key", "")).strip()
            api_secret = str(form.get("api_secret", ""))
            token = form.get(CSRF_FIELD)
        error = None
        if not sessions.login_ok(request, str(token) if token else None):
            error, status = "The sign-in form has expired: sign in again.", 403
        elif not api_key or not api_secret:
            error, status = "Give the api_key and the api_secret that `serve` printed.", 400
        else:
            try:
                basic = BasicCredentials(api_key, api_secret, request.scope["path"])
                made = await tenants.sign_in(services.uow_factory, services.security, basic)
            except NotAuthenticated:
                error, status = "Those credentials are not right (or the tenant is revoked).", 401
            else:
                signed_in = RedirectResponse(PREFIX, 303)
                sessions.start(request, signed_in, made)
                return signed_in
        return login_page(request, status, error)

    async def logout(request: Request, form: FormData) -> Response:
        response = RedirectResponse(PREFIX + "/login", 303)
        sessions.end(response)
        return response

    async def events(request: Request) -> Response:
        creds = session(request)
        mark = await call(request.scope, messages.activity, creds)

        async def stream() -> AsyncIterator[bytes]:
            nonlocal mark
            yield b"retry: 2000\nevent: hello\ndata: connected\n\n"
            quiet = 0.0
            while True:
                await asyncio.sleep(EVENT_POLL_SECONDS)
                quiet += EVENT_POLL_SECONDS
                try:
                    now = await messages.activity(services.uow_factory, services.security, creds)
                except NotAuthenticated:
                    yield b"event: signedout\ndata: signed out\n\n"
                    return
                except Exception as exc:  # noqa: BLE001 - a busy database: try again next time
                    log.info("inbox event stream: %s", type(exc).__name__)
                    continue
                if now != mark:
                    mark = now
                    quiet = 0.0
                    yield b"event: changed\ndata: " + _encode(list(now)) + b"\n\n"
                    await asyncio.sleep(EVENT_MIN_GAP_SECONDS - EVENT_POLL_SECONDS)
                elif quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield b": still here\n\n"

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        content = static_files.get(name)
        if content is None:
            raise HTTPException(404)
        media = MEDIA_TYPES[Path(name).suffix]
        etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
        headers = {"Cache-Control": "public, max-age=3600", "ETag": etag,
                   "X-Content-Type-Options": "nosniff"}  # fmt: skip
        return Response(content, media_type=media, headers=headers)

    return [
        route(PREFIX, GET=page(index)),
        route(PREFIX + "/login", GET=login_form, POST=login),
        route(PREFIX + "/logout", POST=action(logout)),
        route(PREFIX + "/sidebar", GET=page(sidebar)),
        route(PREFIX + "/messages", GET=page(listing)),
        route(PREFIX + "/messages/{message_uuid}", GET=page(one)),
        route(PREFIX + "/messages/{message_uuid}/read", POST=action(read)),
        route(PREFIX + "/compose", POST=action(compose)),
        route(PREFIX + "/webhooks/{webhook_id}", GET=page(webhook)),
        route(PREFIX + "/webhooks/{webhook_id}/redeliver", POST=action(redeliver)),
        route(PREFIX + "/webhooks/{webhook_id}/resend", POST=action(resend)),
        route(
            PREFIX + "/accounts/{channel}/{external_id}/faults",
            GET=page(get_faults),
            POST=action(set_faults),
        ),
        route(PREFIX + "/events", GET=page(events)),
        route(PREFIX + "/static/{name}", GET=static),
    ]


def _compose_defaults(query: MessageFilter) -> dict[str, str]:
    return {"channel": query.channel or "", "to": query.account or "", "from": query.peer or ""}


def _can_read(m: MessageRecord) -> bool:
    return m.direction == "outbound" and m.status in ("submitted", "delivered")
