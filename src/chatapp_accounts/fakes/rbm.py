"""A loopback fake of Google's RCS Business Messaging API and the OAuth token endpoint it needs,
with the signed Pub/Sub-style events RBM pushes back (PROVIDERS.md, sections 4 and 5).

Service account and tokens
--------------------------
The fake makes its own service account: `service_account_info()` is a dict shaped like Google's
JSON key file (`type: service_account`, `project_id`, `private_key_id`, `private_key` (PEM),
`client_email`, `client_id`, `auth_uri`, `token_uri` = this fake's `/token`, …); write it to a
file for CHATAPP_RBM_SERVICE_ACCOUNT_FILE (`write_service_account(path)`, mode 0600).

`POST /token` (form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`)
checks the RS256 assertion as Google does: signed with that key (a `kid` header, when present,
must be its `private_key_id`), `iss` = client_email, `aud` = the token URL, `scope` containing
`https://www.googleapis.com/auth/rcsbusinessmessaging`, `exp` in the future and at most an hour
after `iat`. Answers 200 `{"access_token":"ya29.…","expires_in":3599,"token_type":"Bearer"}`
(`token_expires_in` shortens it for tests), or 400 with Google's OAuth error:

| wrong | `error` | `error_description` |
|---|---|---|
| grant_type | unsupported_grant_type | "Invalid grant_type: …" |
| no assertion | invalid_request | "Missing required parameter: assertion" |
| iss | invalid_grant | "Invalid grant: account not found" |
| signature, malformed, kid | invalid_grant | "Invalid JWT Signature." |
| aud | invalid_grant | "Invalid JWT: Failed audience check. The right audience is <URL>" |
| exp, iat | invalid_grant | `SHORT_LIVED`: "Invalid JWT: Token must be a short-lived token |
| | | (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim." |
| scope | invalid_scope | "Invalid OAuth scope or ID token audience provided." |

Only SHA-256 digests of issued tokens are kept. `tokens_issued` counts them; `expire_tokens()`
expires every token issued so far.

Sending and revoking
--------------------
`POST /v1/phones/{+E.164}/agentMessages?messageId=ID&agentId=AGENT` with
`Authorization: Bearer <issued token>`, body an `AgentMessage`. Answer 200: the body echoed plus
`"name":"phones/{phone}/agentMessages/{messageId}"` and `"sendTime"` (RFC 3339, `…Z`). A
`messageId` already used for that phone: 409 ALREADY_EXISTS. No, unknown or expired token: 401
UNAUTHENTICATED (with `WWW-Authenticate: Bearer realm="https://accounts.google.com/"`). A
missing `messageId` or `agentId`, or a body that is not a JSON object: 400 INVALID_ARGUMENT.

`DELETE /v1/phones/{phone}/agentMessages/{messageId}?agentId=AGENT` (same token rules): 200 `{}`
when the message is not delivered yet (it is then revoked: no DELIVERED follows), 404 NOT_FOUND
when unknown or already delivered.

Every error is Google's error model `{"error":{"code","message","status"}}`. Injected by the
phone's last four digits (public dict `INJECTIONS`; the sandbox's 0001/0002/0003 left alone):

| ending | answer |
|---|---|
| 0404 | 404 NOT_FOUND "Requested entity was not found." (not RCS-capable) |
| 0400 | 400 INVALID_ARGUMENT "Request contains an invalid argument." |
| 0403 | 403 PERMISSION_DENIED "The caller does not have permission" |
| 0429 | 429 RESOURCE_EXHAUSTED "Resource has been exhausted (e.g. check quota)." |
| 0500 | 500 INTERNAL "Internal error encountered." |
| 0502 | 502 `text/html` page |
| 0503 | 503 with an empty body |
| 0300 | normal success, never delivered (no event; revocable) |
| 0999 | never answers (until the client gives up or the fake stops) |

`throttle(agent_id, seconds)` makes every send of that agent answer 429 RESOURCE_EXHAUSTED.

Events
------
POSTed to `callback_url` as Pub/Sub pushes:
`{"message":{"data":"<base64 JSON>","messageId":"<digits>","publishTime":"…Z"},
"subscription":"projects/rbm-fake/subscriptions/rbm-push"}` with
`X-Goog-Signature: base64(HMAC-SHA512(client_token, base64decode(data)))`, up to 3 tries
(0.1 s, 0.2 s apart) on a non-2xx answer or a connection error.

- After each successful send (when `events` is on, the default), in the background after the
  answer (and `event_delay` seconds): `{"senderPhoneNumber","eventType":"DELIVERED","eventId",
  "messageId","agentId","sendTime"}`, then `READ` if `read_receipts`.
- `inbound_text(agent_id, from_, text)`: `{"senderPhoneNumber","messageId","eventId","sendTime",
  "text","agentId"}` (`from_` gets a `+` when it lacks one).
- `suggestion_response(agent_id, from_, postback_data, text, type_="REPLY")`: the same with
  `"suggestionResponse":{"postbackData","text","type"}` instead of `text`.
- `send_event(phone, message_id, event_type, agent_id)`: any event (`READ`, `IS_TYPING`,
  `TTL_EXPIRATION_REVOKED`…).
- `setup_handshake(secret=None, client_token=None)`: POSTs `{"clientToken","secret"}` (unsigned)
  and answers the body the webhook answered (`last_setup_status` holds its status).

Control over HTTP (`/_fake/`, JSON in and out)
----------------------------------------------
| route | does |
|---|---|
| `GET /_fake/requests` | `{"requests":[{method, path, phone, message_id, agent_id, token,`
  `body, status}]}`; `token` is true/false |
| `DELETE /_fake/requests` | forget them |
| `GET /_fake/stats` | `{"requests","tokens_issued","callbacks_sent","callback_attempts",`
  `"callbacks_acknowledged","callbacks_failed","pending_callbacks"}` |
| `GET /_fake/callbacks` | `{"callbacks":[{id, body, status, tries}]}` (body: the push, parsed) |
| `POST /_fake/latency` | `{"seconds": 0.2}` |
| `POST /_fake/throttle` | `{"agent_id", "seconds"}` |
| `POST /_fake/expire-tokens` | expires every issued token |
| `POST /_fake/events` | `{"enabled": bool, "read": bool, "delay": seconds}` (each optional) |
| `POST /_fake/inbound` | `{"agent_id","from","text"}` |
| `POST /_fake/suggestion-response` | `{"agent_id","from","postback_data","text","type"?}` |
| `POST /_fake/event` | `{"phone","message_id","event_type","agent_id"}` |
| `POST /_fake/setup-handshake` | `{"secret"?}` -> `{"status","body"}` |

The event routes answer `{"id","status","tries","acknowledged"}` once the push ended.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Unpack
from urllib.parse import quote

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._common import (
    Alias,
    CallbackOutcome,
    FakeServer,
    ServerOptions,
    answer_now,
    b64,
    compact_json,
    control,
    fields_of,
    json_answer,
    random_digits,
    required_strs,
    rfc3339,
    token_digest,
)

SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_CLIENT_TOKEN = "fake-client-token"  # noqa: S105 (a fake's own default)
SUBSCRIPTION = "projects/rbm-fake/subscriptions/rbm-push"
Special = Literal["html_502", "empty_503", "hang", "no_events"]


@dataclass(frozen=True)
class GoogleError:
    """An answer in Google's error model."""

    code: int
    status: str
    message: str

    def response(self, headers: Mapping[str, str] | None = None) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return json_answer(self.code, body, headers)


Injection = GoogleError | Special

NOT_FOUND = GoogleError(404, "NOT_FOUND", "Requested entity was not found.")
INVALID_ARGUMENT = GoogleError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
RESOURCE_EXHAUSTED = GoogleError(
    429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."
)
ALREADY_EXISTS = GoogleError(409, "ALREADY_EXISTS", "Requested entity already exists")
UNAUTHENTICATED = GoogleError(
    401,
    "UNAUTHENTICATED",
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
)

INJECTIONS: dict[str, Injection] = {
    "0404": NOT_FOUND,
    "0400": INVALID_ARGUMENT,
    "0403": GoogleError(403, "PERMISSION_DENIED", "The caller does not have permission"),
    "0429": RESOURCE_EXHAUSTED,
    "0500": GoogleError(500, "INTERNAL", "Internal error encountered."),
    "0502": "html_502",
    "0503": "empty_503",
    "0300": "no_events",
    "0999": "hang",
}

SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


def _oauth_error(error: str, description: str) -> web.Response:
    return json_answer(400, {"error": error, "error_description": description})


def _event_id() -> str:
    return "Mx" + secrets.token_urlsafe(16)


@dataclass
class _Message:
    agent_id: str
    delivered: bool = False
    revoked: bool = False


class RbmFake(FakeServer):
    """The fake RBM API and token endpoint (the server, request log, callback poster and shared
    control routes are `FakeServer`'s; its `base_url` is CHATAPP_RBM_URL). `callback_url`:
    where events go (None: none are sent). `client_token`: signs them. `events`: DELIVERED
    after each send (default on); `read_receipts`: READ after it. `latency`: seconds every send
    or revoke waits before its answer. `event_delay`: seconds between a send's answer and its
    DELIVERED.
    `token_expires_in`: the `expires_in` of issued tokens (they do expire then).
    `client_email`: the service account's. `callback_tries` / `callback_backoff`: the retry
    policy of every push."""

    def __init__(
        self,
        *,
        client_token: str = DEFAULT_CLIENT_TOKEN,
        token_expires_in: int = 3599,
        client_email: str = "rbm-fake@chatapp-fake.iam.gserviceaccount.com",
        events: bool = True,
        event_delay: float = 0.0,
        **server: Unpack[ServerOptions],
    ) -> None:
        super().__init__(after_send=events, after_send_delay=event_delay, **server)
        self.client_token = client_token
        self.token_expires_in = token_expires_in
        self.client_email = client_email
        self.tokens_issued = 0
        self.last_setup_status: int | None = None
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = secrets.token_hex(20)
        self._client_id = random_digits(21)
        self._tokens: dict[str, float] = {}  # SHA-256 of an issued token -> monotonic expiry
        self._messages: dict[tuple[str, str], _Message] = {}
        self.token_requests: list[dict[str, Any]] = []

    @property
    def token_url(self) -> str:
        """`base_url` + `/token`: CHATAPP_RBM_TOKEN_URL and the assertion's `aud`."""
        return f"{self.base_url}/token"

    # -- the service account --------------------------------------------------------------

    def service_account_info(self) -> dict[str, str]:
        """The service account's JSON key, as Google's key file has it (its `token_uri` is
        this fake's: call after start())."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return {
            "type": "service_account",
            "project_id": "chatapp-fake",
            "private_key_id": self._key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": self._client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + quote(self.client_email),
            "universe_domain": "googleapis.com",
        }

    def write_service_account(self, path: str | os.PathLike[str]) -> Path:
        """Write `service_account_info()` to `path` (mode 0600); answers the path."""
        target = Path(path)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(self.service_account_info(), handle, indent=2)
            handle.write("\n")
        return target

    def issue_token(self) -> str:
        """A valid access token without the JWT exchange (counted in `tokens_issued`)."""
        token = "ya29.c." + secrets.token_urlsafe(96)
        self._tokens[token_digest(token)] = time.monotonic() + self.token_expires_in
        self.tokens_issued += 1
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 from now on."""
        for digest in self._tokens:
            self._tokens[digest] = 0.0

    def _token_valid(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() != "bearer ":
            return False
        expiry = self._tokens.get(token_digest(auth[7:].strip()))
        return expiry is not None and expiry > time.monotonic()

    # -- control --------------------------------------------------------------------------

    _switches_path = "/_fake/events"
    _throttle_key = "agent_id"
    events = Alias[bool]("_after_send_on")
    event_delay = Alias[float]("_after_send_delay")

    def _counters(self) -> dict[str, int]:
        return {"tokens_issued": self.tokens_issued}

    def throttle(self, agent_id: str, seconds: float) -> None:
        """Every send of this agent answers 429 RESOURCE_EXHAUSTED for `seconds` from now."""
        self._throttle(agent_id, seconds)

    def message_state(self, phone: str, message_id: str) -> dict[str, Any] | None:
        """`{agent_id, delivered, revoked}` of a message this fake took, or None."""
        return fields_of(self._messages.get((phone, message_id)))

    # -- events ---------------------------------------------------------------------------

    def sign(self, data: bytes) -> str:
        """The `X-Goog-Signature` of an event's decoded `message.data`."""
        return b64(hmac.new(self.client_token.encode(), data, hashlib.sha512).digest())

    async def push(self, event: Mapping[str, Any], *, id: str = "") -> CallbackOutcome:
        """Sign and POST any event as a Pub/Sub push (with retries)."""
        data = compact_json(event)
        body = compact_json(
            {
                "message": {
                    "data": b64(data),
                    "messageId": random_digits(16),
                    "publishTime": rfc3339(),
                },
                "subscription": SUBSCRIPTION,
            }
        )
        return await self._poster.post(body, {"X-Goog-Signature": self.sign(data)}, id=id)

    async def send_event(
        self, phone: str, message_id: str, event_type: str, agent_id: str
    ) -> CallbackOutcome:
        """Any event about an agent message (DELIVERED, READ, IS_TYPING, …); the outcome's `id`
        is its eventId. DELIVERED marks a message this fake took as delivered."""
        message = self._messages.get((phone, message_id))
        if message is not None and event_type == "DELIVERED":
            message.delivered = True
        event_id = _event_id()
        event = {
            "senderPhoneNumber": phone,
            "eventType": event_type,
            "eventId": event_id,
            "messageId": message_id,
            "agentId": agent_id,
            "sendTime": rfc3339(),
        }
        return await self.push(event, id=event_id)

    async def inbound_text(self, agent_id: str, from_: str, text: str) -> CallbackOutcome:
        """A user's text message to the agent; the outcome's `id` is its messageId."""
        return await self._user_message(agent_id, from_, {"text": text})

    async def suggestion_response(
        self,
        agent_id: str,
        from_: str,
        postback_data: str,
        text: str,
        type_: str = "REPLY",
    ) -> CallbackOutcome:
        """A user's tap on a suggested reply (`type_` REPLY) or action (ACTION)."""
        response = {"postbackData": postback_data, "text": text, "type": type_}
        return await self._user_message(agent_id, from_, {"suggestionResponse": response})

    async def _user_message(
        self, agent_id: str, from_: str, content: dict[str, Any]
    ) -> CallbackOutcome:
        message_id = "MS" + secrets.token_urlsafe(18)
        event = {
            "senderPhoneNumber": from_ if from_.startswith("+") else "+" + from_,
            "messageId": message_id,
            "eventId": _event_id(),
            "sendTime": rfc3339(),
            **content,
            "agentId": agent_id,
        }
        return await self.push(event, id=message_id)

    async def setup_handshake(
        self, secret: str | None = None, client_token: str | None = None
    ) -> str:
        """RBM's webhook set-up request `{"clientToken","secret"}`; answers the body the
        webhook answered (its status in `last_setup_status`)."""
        payload = {
            "clientToken": self.client_token if client_token is None else client_token,
            "secret": secret if secret is not None else secrets.token_hex(16),
        }
        self.last_setup_status, answer = await self._call_back(
            "POST", data=compact_json(payload), headers={"Content-Type": "application/json"}
        )
        return answer

    async def _after_send(self, phone: str, message_id: str) -> None:
        message = self._messages[(phone, message_id)]
        if message.revoked:
            return
        await self.send_event(phone, message_id, "DELIVERED", message.agent_id)
        if self.read_receipts:
            await self.send_event(phone, message_id, "READ", message.agent_id)

    # -- HTTP -----------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/phones/{phone}/agentMessages", self._send)
        app.router.add_delete("/v1/phones/{phone}/agentMessages/{message_id}", self._revoke)

    @control("POST", "/_fake/expire-tokens")
    async def _c_expire(self, _: dict[str, Any]) -> None:
        self.expire_tokens()

    @control("POST", "/_fake/inbound")
    async def _c_inbound(self, body: dict[str, Any]) -> CallbackOutcome:
        agent_id, from_, text = required_strs(body, "agent_id", "from", "text")
        return await self.inbound_text(agent_id, from_, text)

    @control("POST", "/_fake/suggestion-response")
    async def _c_suggestion(self, body: dict[str, Any]) -> CallbackOutcome:
        agent_id, from_, postback, text = required_strs(
            body, "agent_id", "from", "postback_data", "text"
        )
        type_ = body.get("type") or "REPLY"
        return await self.suggestion_response(agent_id, from_, postback, text, type_)

    @control("POST", "/_fake/event")
    async def _c_event(self, body: dict[str, Any]) -> CallbackOutcome:
        keys = ("phone", "message_id", "event_type", "agent_id")
        return await self.send_event(*required_strs(body, *keys))

    @control("POST", "/_fake/setup-handshake")
    async def _c_setup(self, body: dict[str, Any]) -> web.Response:
        answer = await self.setup_handshake(body.get("secret"))
        return json_answer(200, {"status": self.last_setup_status, "body": answer})

    # -- the token endpoint ---------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant_type = form.get("grant_type")
        assertion = form.get("assertion")
        answer = self._exchange(
            grant_type if isinstance(grant_type, str) else None,
            assertion if isinstance(assertion, str) else None,
        )
        outcome = json.loads(answer.body) if isinstance(answer.body, bytes) else {}
        self.token_requests.append(
            {
                "status": answer.status,
                "error": outcome.get("error"),
                "error_description": outcome.get("error_description"),
            }
        )
        return answer

    def _exchange(self, grant_type: str | None, assertion: str | None) -> web.Response:
        if grant_type != GRANT_TYPE:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
        if not assertion:
            return _oauth_error("invalid_request", "Missing required parameter: assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if unverified.get("iss") != self.client_email:
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        kid = header.get("kid")
        if header.get("alg") != "RS256" or (kid is not None and kid != self._key_id):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(
                assertion,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != self.token_url:
            return _oauth_error(
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {self.token_url}",
            )
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if (
            not isinstance(exp, int | float)
            or not isinstance(iat, int | float)
            or exp <= now
            or iat > now + 60
            or exp - iat > 3600
        ):
            return _oauth_error("invalid_grant", SHORT_LIVED)
        scope = claims.get("scope")
        if not isinstance(scope, str) or SCOPE not in scope.split():
            return _oauth_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = self.issue_token()
        return json_answer(
            200,
            {"access_token": token, "expires_in": self.token_expires_in, "token_type": "Bearer"},
        )

    # -- the send and revoke routes -------------------------------------------------------

    def _record(self, request: web.Request, body: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "phone": request.match_info["phone"],
            "message_id": request.match_info.get("message_id") or request.query.get("messageId"),
            "agent_id": request.query.get("agentId"),
            "token": request.headers.get("Authorization", "")[:7].lower() == "bearer ",
            "body": body,
            "status": None,
        }
        return record

    async def _send(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        return await self._logged(
            self._record(request, body), lambda: self._answer_send(request, body)
        )

    async def _answer_send(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not self._token_valid(request):
            return UNAUTHENTICATED.response(
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
            )
        phone = request.match_info["phone"]
        message_id = request.query.get("messageId")
        agent_id = request.query.get("agentId")
        if not message_id or not agent_id or not isinstance(body, dict):
            return INVALID_ARGUMENT.response()
        if (phone, message_id) in self._messages:
            return ALREADY_EXISTS.response()
        if self._is_throttled(agent_id):
            return RESOURCE_EXHAUSTED.response()
        injection = INJECTIONS.get(phone[-4:])
        if isinstance(injection, GoogleError):
            return injection.response()
        special = await self._special(injection, "rcsbusinessmessaging.googleapis.com")
        if special is not None:
            return special
        self._messages[(phone, message_id)] = _Message(agent_id)
        answer = {
            **body,
            "name": f"phones/{phone}/agentMessages/{message_id}",
            "sendTime": rfc3339(),
        }
        response = await answer_now(request, json_answer(200, answer))
        if injection != "no_events":
            self._after_answer(lambda: self._after_send(phone, message_id))
        return response

    async def _revoke(self, request: web.Request) -> web.StreamResponse:
        return await self._logged(self._record(request, None), lambda: self._answer_revoke(request))

    async def _answer_revoke(self, request: web.Request) -> web.Response:
        if not self._token_valid(request):
            return UNAUTHENTICATED.response(
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
            )
        message = self._messages.get(
            (request.match_info["phone"], request.match_info["message_id"])
        )
        if message is None or message.delivered or message.revoked:
            return NOT_FOUND.response()
        message.revoked = True
        return json_answer(200, {})
