"""A loopback fake of Meta's Graph API: the Messenger Send API and the WhatsApp Cloud API, with
the signed webhooks Meta sends back (the providers contract, PROVIDERS.md, sections 1, 2, 5).

Sending
-------
`POST /{version}/{id}/messages` (any version such as `v21.0`) and `POST /{version}/me/messages`.
The token is taken from `Authorization: Bearer T`, or an `access_token` query, form or JSON
body parameter (all accepted; `requests` records which one came, never the token). The body is
JSON (or a form whose `recipient` / `message` fields hold JSON, as in Meta's curl examples).

- `"messaging_product": "whatsapp"`: a WhatsApp Cloud API send; the path id is the
  phone_number_id. Answer 200
  `{"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],"messages":[{"id":"wamid.…"}]}`.
  `{"messaging_product":"whatsapp","status":"read","message_id":…}` is mark-as-read:
  200 `{"success":true}` (no callback).
- `"recipient": {"id": PSID}`: a Messenger send; the path id is the page id. Answer 200
  `{"recipient_id":PSID,"message_id":"m_…"}`.

Errors are Graph error objects, `type` always `OAuthException`:
`{"error":{"message","type","code","error_subcode"?,"is_transient"?,"error_data"?,"fbtrace_id"}}`;
WhatsApp's add `"error_data":{"messaging_product":"whatsapp","details":…}`.

- No token: 400, code 104 "An access token is required to request this resource."
- A token passed to `expire_token()`: code 190, subcode 463 "Error validating access token:
  Session has expired…", with `WWW-Authenticate: OAuth "Facebook Platform" "invalid_token" …`;
  HTTP 400 on Messenger (Graph's classic answer), 401 on WhatsApp (the Cloud API error table).
  With `valid_tokens` given, any other token answers code 190 (no subcode) "Invalid OAuth
  access token - Cannot parse access token", 400/401 likewise.
- An account under `throttle()`: WhatsApp 429 code 130429, Messenger 429 code 613.
- Malformed bodies: 400 code 100 (`(#100) …`).

Error injection: by the recipient's last four digits (`to` on WhatsApp, `recipient.id` on
Messenger), the public dict `INJECTIONS` (ending -> product -> answer). The app's sandbox
endings 0001/0002/0003 are left alone.

| ending | WhatsApp | Messenger |
|---|---|---|
| 0190 | 401 190/463 expired token | 400 190/463 expired token |
| 0429 | 429 130429 throughput limit | 429 613 rate limit |
| 0056 | 429 131056 pair rate limit | (normal success) |
| 0026 | 400 131026 message undeliverable | 400 100/2018001 no matching user |
| 0047 | 400 131047 re-engagement (24 h window) | 400 10/2018278 outside the allowed window |
| 0132 | 404 132001 template does not exist | (normal success) |
| 0049 | 400 131049 not delivered (ecosystem) | 400 551/1545041 person unavailable |
| 0120 | 503 131016 service unavailable | 500 1200/2018024 temporary send failure |
| 0500 | 500 131000 something went wrong | 500 code 2, `is_transient: true` |
| 0502 | 502 `text/html` page | same |
| 0503 | 503 with an empty body | same |
| 0200 | 200 without an id: `"messages":[]` | 200 `{"recipient_id"}`, no `message_id` |
| 0300 | normal success, but no status callback ever | same |
| 0999 | never answers (until the client gives up or the fake stops) | same |

Callbacks
---------
Sent to `callback_url` as Meta does: `POST`, compact JSON with non-ASCII escaped (`\\u00e4`),
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`, up to 3 tries
(0.1 s, then 0.2 s apart) on a non-2xx answer or a connection error. Counted in `stats()`;
each one's body, last status and tries are in `callbacks`.

- After each successful WhatsApp send (when `statuses` is on, the default): `sent`, then
  `delivered`, then `read` if `read_receipts`; in one background task started after the send's
  answer is written (after `status_delay` seconds). Envelope
  `{"object":"whatsapp_business_account","entry":[{"id":WABA_ID,"changes":[{"field":"messages",
  "value":{"messaging_product":"whatsapp","metadata":{"display_phone_number","phone_number_id"},
  "statuses":[{"id":wamid,"status","timestamp":"<unix s>","recipient_id", …}]}}]}]}`; `sent` and
  `delivered` carry `conversation` and `pricing`; `biz_opaque_callback_data` is echoed. The WABA
  id is "waba-" + phone_number_id and the display number the phone_number_id, unless
  `set_number()` says otherwise.
- After each successful Messenger send: a `delivery` event (`mids` [the mid], `watermark` = the
  send's acceptance time in ms), then `read` (`watermark`) if `read_receipts`. Envelope
  `{"object":"page","entry":[{"id":PAGE_ID,"time":ms,"messaging":[event]}]}`.
- On demand: `inbound_whatsapp()`, `inbound_messenger()`, `send_status()` (any WhatsApp status,
  `failed` with an `errors` array), `messenger_delivery()`, `messenger_read()`, and
  `verify_webhook()` (the `GET ?hub.mode=subscribe&hub.verify_token&hub.challenge` handshake).

Control over HTTP (`/_fake/`, JSON in and out; what the CLI's users and the tour use)
------------------------------------------------------------------------------------
`requests` entries are `{method, path, product, account_id, recipient, token, token_via, body,
status}`: `path` without its query string, `token` true/false, `token_via` "header", "query",
"form" or "body" (or null), a body's `access_token` replaced by `***`, `status` the HTTP status
answered (null while hanging). `stats()` is `{"requests", "callbacks_sent", "callback_attempts",
"callbacks_acknowledged", "callbacks_failed", "pending_callbacks"}`.

| route | does |
|---|---|
| `GET /_fake/requests` | `{"requests":[…]}` as `requests` has them |
| `DELETE /_fake/requests` | forget them |
| `GET /_fake/stats` | `stats()`: request and callback counters |
| `GET /_fake/callbacks` | `{"callbacks":[{id, body, status, tries}]}` |
| `POST /_fake/latency` | `{"seconds": 0.2}` |
| `POST /_fake/throttle` | `{"account_id": ID, "seconds": 30}` |
| `POST /_fake/expire-token` | `{"token": T}` |
| `POST /_fake/statuses` | `{"enabled": bool, "read": bool, "delay": seconds}` (each optional) |
| `POST /_fake/numbers` | `{"phone_number_id", "waba_id"?, "display_phone_number"?}` |
| `POST /_fake/inbound/whatsapp` | `{"phone_number_id","from","text","context_wamid"?,`
  `"profile_name"?}` |
| `POST /_fake/inbound/messenger` | `{"page_id","psid","text","reply_to_mid"?}` |
| `POST /_fake/status` | `{"wamid","status","errors"?}` (a wamid this fake issued) |
| `POST /_fake/messenger/delivery` | `{"page_id","psid","mids"?,"watermark"?}` |
| `POST /_fake/messenger/read` | `{"page_id","psid","watermark"?}` |
| `POST /_fake/verify-webhook` | `{"verify_token","challenge"?}` -> `{"status","body"}` |

The callback routes answer `{"id","status","tries","acknowledged"}` once the callback ended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Unpack

from aiohttp import web

from ._common import (
    MASK,
    Alias,
    CallbackOutcome,
    FakeServer,
    ServerOptions,
    answer_now,
    compact_json,
    control,
    fields_of,
    json_answer,
    random_digits,
    required_str,
    required_strs,
    token_digest,
)

Product = Literal["whatsapp", "messenger"]
Special = Literal["html_502", "empty_503", "no_id", "hang", "no_callbacks"]
DEFAULT_VERSION = "v21.0"
DEFAULT_APP_SECRET = "fake-app-secret"  # noqa: S105 (a fake's own default, printed by the CLI)


@dataclass(frozen=True)
class GraphError:
    """A Graph error answer: HTTP status, `code`, `message`, and when Graph gives them
    `error_subcode`, `is_transient`, WhatsApp's `error_data.details`."""

    http_status: int
    code: int
    message: str
    subcode: int | None = None
    details: str | None = None
    transient: bool = False

    def body(self, product: Product) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException"}
        if self.transient:
            error["is_transient"] = True
        error["code"] = self.code
        if product == "whatsapp" and self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = _fbtrace_id()
        return {"error": error}


Injection = GraphError | Special

_UNDELIVERABLE = (
    "Unable to deliver message. Reasons can include: The recipient phone number is not a "
    "WhatsApp phone number; the recipient has not accepted our new Terms of Service and "
    "Privacy Policy; the recipient is using an old WhatsApp version."
)

INJECTIONS: dict[str, dict[Product, Injection]] = {
    "0190": {
        "whatsapp": GraphError(
            401, 190, "Error validating access token: Session has expired.", 463
        ),
        "messenger": GraphError(
            400, 190, "Error validating access token: Session has expired.", 463
        ),
    },
    "0429": {
        "whatsapp": GraphError(
            429,
            130429,
            "(#130429) Rate limit hit",
            details="Cloud API message throughput has been reached.",
        ),
        "messenger": GraphError(429, 613, "(#613) Calls to this api have exceeded the rate limit."),
    },
    "0056": {
        "whatsapp": GraphError(
            429,
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            details="Too many messages sent from the sender phone number to the same recipient "
            "phone number in a short period of time.",
        ),
    },
    "0026": {
        "whatsapp": GraphError(
            400, 131026, "(#131026) Message Undeliverable.", details=_UNDELIVERABLE
        ),
        "messenger": GraphError(400, 100, "(#100) No matching user found", 2018001),
    },
    "0047": {
        "whatsapp": GraphError(
            400,
            131047,
            "(#131047) Re-engagement message",
            details="Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number.",
        ),
        "messenger": GraphError(
            400,
            10,
            "(#10) This message is sent outside of allowed window. Learn more about "
            "the new policy here: https://developers.facebook.com/docs/messenger-platform/"
            "policy-overview",
            2018278,
        ),
    },
    "0132": {
        "whatsapp": GraphError(
            404,
            132001,
            "(#132001) Template name does not exist in the translation",
            details="template name does not exist in en_US",
        ),
    },
    "0049": {
        "whatsapp": GraphError(
            400,
            131049,
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
            details="In order to maintain a healthy ecosystem "
            "engagement, the message failed to be delivered.",
        ),
        "messenger": GraphError(400, 551, "(#551) This person isn't available right now.", 1545041),
    },
    "0120": {
        "whatsapp": GraphError(
            503,
            131016,
            "(#131016) Service unavailable",
            details="A service is temporarily unavailable.",
        ),
        "messenger": GraphError(
            500, 1200, "(#1200) Temporary send message failure. Please try again later", 2018024
        ),
    },
    "0500": {
        "whatsapp": GraphError(
            500,
            131000,
            "(#131000) Something went wrong",
            details="Message failed to send due to an unknown error.",
        ),
        "messenger": GraphError(
            500,
            2,
            "An unexpected error has occurred. Please retry your request later.",
            transient=True,
        ),
    },
    "0502": {"whatsapp": "html_502", "messenger": "html_502"},
    "0503": {"whatsapp": "empty_503", "messenger": "empty_503"},
    "0200": {"whatsapp": "no_id", "messenger": "no_id"},
    "0300": {"whatsapp": "no_callbacks", "messenger": "no_callbacks"},
    "0999": {"whatsapp": "hang", "messenger": "hang"},
}

NO_TOKEN = GraphError(400, 104, "An access token is required to request this resource.")
THROTTLED: dict[Product, GraphError] = {
    "whatsapp": INJECTIONS["0429"]["whatsapp"],  # type: ignore[dict-item]
    "messenger": INJECTIONS["0429"]["messenger"],  # type: ignore[dict-item]
}
_AUTH_STATUS: dict[Product, int] = {"whatsapp": 401, "messenger": 400}

# What a `failed` status carries when send_status() is given no `errors`.
DEFAULT_FAILED_ERRORS: list[dict[str, Any]] = [
    {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }
]


def _fbtrace_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "A" + "".join(secrets.choice(alphabet) for _ in range(22))


def _wamid() -> str:
    raw = base64.b64encode(b"\x1c\x18\x0b" + secrets.token_bytes(30)).decode("ascii")
    return "wamid." + raw.replace("+", "A").replace("/", "B")


def _mid() -> str:
    return "m_" + secrets.token_urlsafe(48)


def _ms() -> int:
    return int(time.time() * 1000)


def _graph_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")


@dataclass
class _Sent:
    product: Product
    account_id: str
    recipient: str
    accepted_ms: int
    opaque: str | None = None


class MetaFake(FakeServer):
    """The fake Graph API (the server, request log, callback poster and shared control routes
    are `FakeServer`'s). `callback_url`: where webhooks go (None: none are sent).
    `app_secret`: signs them. `statuses`: send status callbacks after each send (default on);
    `read_receipts`: a `read` after each `delivered`. `latency`: seconds every send waits before
    its answer. `status_delay`: seconds between a send's answer and its first status.
    `waba_ids`: phone_number_id -> WABA id. `valid_tokens`: when given, the only tokens taken.
    `callback_tries` / `callback_backoff`: the retry policy of every callback."""

    def __init__(
        self,
        *,
        app_secret: str = DEFAULT_APP_SECRET,
        statuses: bool = True,
        status_delay: float = 0.0,
        waba_ids: Mapping[str, str] | None = None,
        valid_tokens: Collection[str] | None = None,
        **server: Unpack[ServerOptions],
    ) -> None:
        super().__init__(after_send=statuses, after_send_delay=status_delay, **server)
        self.app_secret = app_secret
        self._waba: dict[str, str] = dict(waba_ids or {})
        self._display: dict[str, str] = {}
        self._valid = {token_digest(t) for t in valid_tokens} if valid_tokens is not None else None
        self._expired: dict[str, float] = {}  # SHA-256 of the token -> when it expired
        self._sent: dict[str, _Sent] = {}

    @property
    def graph_url(self) -> str:
        """What CHATAPP_META_GRAPH_URL should be: `base_url` + `/v21.0`."""
        return f"{self.base_url}/{DEFAULT_VERSION}"

    # -- control --------------------------------------------------------------------------

    _switches_path = "/_fake/statuses"
    _throttle_key = "account_id"
    statuses = Alias[bool]("_after_send_on")
    status_delay = Alias[float]("_after_send_delay")

    def throttle(self, account_id: str, seconds: float) -> None:
        """Every send from this phone_number_id or page answers 130429 / 613 (HTTP 429) for
        `seconds` from now (0 lifts it)."""
        self._throttle(account_id, seconds)

    def expire_token(self, token: str) -> None:
        """From now on this token answers code 190 (only its SHA-256 is kept)."""
        self._expired.setdefault(token_digest(token), time.time())

    def set_number(
        self,
        phone_number_id: str,
        *,
        waba_id: str | None = None,
        display_phone_number: str | None = None,
    ) -> None:
        """The WABA id (entry id) and display number used in this number's callbacks."""
        if waba_id is not None:
            self._waba[phone_number_id] = waba_id
        if display_phone_number is not None:
            self._display[phone_number_id] = display_phone_number

    def waba_id(self, phone_number_id: str) -> str:
        return self._waba.get(phone_number_id, "waba-" + phone_number_id)

    def display_phone_number(self, phone_number_id: str) -> str:
        return self._display.get(phone_number_id, phone_number_id)

    @property
    def sent_ids(self) -> list[str]:
        """The wamids and mids this fake issued, oldest first."""
        return list(self._sent)

    def sent_message(self, message_id: str) -> dict[str, Any] | None:
        """What this fake knows of a wamid or mid it issued: product, account_id, recipient,
        accepted_ms."""
        return fields_of(self._sent.get(message_id), "opaque")

    # -- callbacks on demand --------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        """The `X-Hub-Signature-256` value of these bytes."""
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    async def post_signed(self, payload: Mapping[str, Any], *, id: str = "") -> CallbackOutcome:
        """Sign and POST any webhook payload (with retries)."""
        body = compact_json(payload)
        return await self._poster.post(body, {"X-Hub-Signature-256": self.sign(body)}, id=id)

    def _whatsapp_envelope(self, phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_phone_number(phone_number_id),
                "phone_number_id": phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id(phone_number_id),
                    "changes": [{"value": value, "field": "messages"}],
                }
            ],
        }

    @staticmethod
    def _page_envelope(page_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return {"object": "page", "entry": [{"id": page_id, "time": _ms(), "messaging": [event]}]}

    async def inbound_whatsapp(
        self,
        phone_number_id: str,
        from_: str,
        text: str,
        context_wamid: str | None = None,
        profile_name: str = "Kerry Fisher",
    ) -> CallbackOutcome:
        """A customer's text message to this number; the outcome's `id` is its wamid."""
        wamid = _wamid()
        message: dict[str, Any] = {"from": from_, "id": wamid, "timestamp": str(int(time.time()))}
        if context_wamid is not None:
            message["context"] = {
                "from": self.display_phone_number(phone_number_id),
                "id": context_wamid,
            }
        message["text"] = {"body": text}
        message["type"] = "text"
        value = {
            "contacts": [{"profile": {"name": profile_name}, "wa_id": from_}],
            "messages": [message],
        }
        return await self.post_signed(self._whatsapp_envelope(phone_number_id, value), id=wamid)

    async def inbound_messenger(
        self, page_id: str, psid: str, text: str, reply_to_mid: str | None = None
    ) -> CallbackOutcome:
        """A customer's text message to this page; the outcome's `id` is its mid."""
        mid = _mid()
        message: dict[str, Any] = {"mid": mid, "text": text}
        if reply_to_mid is not None:
            message["reply_to"] = {"mid": reply_to_mid}
        event = {
            "sender": {"id": psid},
            "recipient": {"id": page_id},
            "timestamp": _ms(),
            "message": message,
        }
        return await self.post_signed(self._page_envelope(page_id, event), id=mid)

    async def send_status(
        self,
        wamid: str,
        status: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        recipient_id: str | None = None,
        phone_number_id: str | None = None,
        timestamp: int | None = None,
    ) -> CallbackOutcome:
        """Any WhatsApp status (`sent`, `delivered`, `read`, `failed`, `played`…) for a wamid.
        For a wamid this fake issued, recipient and number are known; otherwise pass them.
        `failed` carries `errors` (default: one 131026 error, `DEFAULT_FAILED_ERRORS`)."""
        sent = self._sent.get(wamid)
        recipient = recipient_id or (sent.recipient if sent else None)
        number = phone_number_id or (sent.account_id if sent else None)
        if recipient is None or number is None:
            raise ValueError(f"unknown wamid {wamid!r}: pass recipient_id and phone_number_id")
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(timestamp if timestamp is not None else int(time.time())),
            "recipient_id": recipient,
        }
        if status in ("sent", "delivered"):
            conversation: dict[str, Any] = {"id": secrets.token_hex(16)}
            if status == "sent":
                conversation["expiration_timestamp"] = str(int(time.time()) + 86400)
            conversation["origin"] = {"type": "service"}
            entry["conversation"] = conversation
            entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
        if sent is not None and sent.opaque is not None:
            entry["biz_opaque_callback_data"] = sent.opaque
        if status == "failed":
            entry["errors"] = errors if errors is not None else DEFAULT_FAILED_ERRORS
        elif errors is not None:
            entry["errors"] = errors
        payload = self._whatsapp_envelope(number, {"statuses": [entry]})
        return await self.post_signed(payload, id=wamid)

    async def messenger_delivery(
        self,
        page_id: str,
        psid: str,
        mids: list[str] | None = None,
        watermark: int | None = None,
    ) -> CallbackOutcome:
        """A Messenger `delivery` event (`mids` left out when None; watermark default now)."""
        delivery: dict[str, Any] = {}
        if mids is not None:
            delivery["mids"] = mids
        delivery["watermark"] = watermark if watermark is not None else _ms()
        event = {"sender": {"id": psid}, "recipient": {"id": page_id}, "delivery": delivery}
        return await self.post_signed(self._page_envelope(page_id, event), id=",".join(mids or []))

    async def messenger_read(
        self, page_id: str, psid: str, watermark: int | None = None
    ) -> CallbackOutcome:
        """A Messenger `read` event (watermark default now)."""
        event = {
            "sender": {"id": psid},
            "recipient": {"id": page_id},
            "timestamp": _ms(),
            "read": {"watermark": watermark if watermark is not None else _ms()},
        }
        return await self.post_signed(self._page_envelope(page_id, event))

    async def verify_webhook(
        self, verify_token: str, challenge: str | None = None
    ) -> tuple[int, str]:
        """Meta's subscription handshake against the callback URL: `GET
        ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`; answers (status, body)."""
        params = {
            "hub.mode": "subscribe",
            "hub.challenge": challenge or random_digits(10),
            "hub.verify_token": verify_token,
        }
        return await self._call_back("GET", params=params)

    async def _after_send(self, message_id: str) -> None:
        sent = self._sent[message_id]
        if sent.product == "whatsapp":
            for status in ("sent", "delivered", *(("read",) if self.read_receipts else ())):
                await self.send_status(message_id, status)
        else:
            await self.messenger_delivery(
                sent.account_id, sent.recipient, [message_id], sent.accepted_ms
            )
            if self.read_receipts:
                await self.messenger_read(sent.account_id, sent.recipient, _ms())

    # -- HTTP -----------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        app.router.add_post(r"/{version:v\d+(\.\d+)?}/{id}/messages", self._send)

    @control("POST", "/_fake/expire-token")
    async def _c_expire(self, body: dict[str, Any]) -> None:
        self.expire_token(required_str(body, "token"))

    @control("POST", "/_fake/numbers")
    async def _c_numbers(self, body: dict[str, Any]) -> web.Response:
        number = required_str(body, "phone_number_id")
        self.set_number(
            number,
            waba_id=body.get("waba_id"),
            display_phone_number=body.get("display_phone_number"),
        )
        return json_answer(
            200,
            {
                "phone_number_id": number,
                "waba_id": self.waba_id(number),
                "display_phone_number": self.display_phone_number(number),
            },
        )

    @control("POST", "/_fake/inbound/whatsapp")
    async def _c_inbound_whatsapp(self, body: dict[str, Any]) -> CallbackOutcome:
        number, from_, text = required_strs(body, "phone_number_id", "from", "text")
        context, profile = body.get("context_wamid"), body.get("profile_name") or "Kerry Fisher"
        return await self.inbound_whatsapp(number, from_, text, context, profile_name=profile)

    @control("POST", "/_fake/inbound/messenger")
    async def _c_inbound_messenger(self, body: dict[str, Any]) -> CallbackOutcome:
        page, psid, text = required_strs(body, "page_id", "psid", "text")
        return await self.inbound_messenger(page, psid, text, body.get("reply_to_mid"))

    @control("POST", "/_fake/status")
    async def _c_status(self, body: dict[str, Any]) -> CallbackOutcome:
        errors = body.get("errors")
        if errors is not None and not isinstance(errors, list):
            raise ValueError("errors must be a list")
        return await self.send_status(
            required_str(body, "wamid"),
            required_str(body, "status"),
            errors=errors,
            recipient_id=body.get("recipient_id"),
            phone_number_id=body.get("phone_number_id"),
        )

    @control("POST", "/_fake/messenger/delivery")
    async def _c_delivery(self, body: dict[str, Any]) -> CallbackOutcome:
        page, psid = required_strs(body, "page_id", "psid")
        return await self.messenger_delivery(page, psid, body.get("mids"), body.get("watermark"))

    @control("POST", "/_fake/messenger/read")
    async def _c_read(self, body: dict[str, Any]) -> CallbackOutcome:
        page, psid = required_strs(body, "page_id", "psid")
        return await self.messenger_read(page, psid, body.get("watermark"))

    @control("POST", "/_fake/verify-webhook")
    async def _c_verify(self, body: dict[str, Any]) -> web.Response:
        status, text = await self.verify_webhook(
            required_str(body, "verify_token"), body.get("challenge")
        )
        return json_answer(200, {"status": status, "body": text})

    # -- the send route -------------------------------------------------------------------

    @staticmethod
    async def _read_send(
        request: web.Request,
    ) -> tuple[dict[str, Any] | None, str | None, str | None]:
        """(body or None when unreadable, token, where the token came from)."""
        token: str | None = None
        via: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer " and auth[7:].strip():
            token, via = auth[7:].strip(), "header"
        elif request.query.get("access_token"):
            token, via = request.query["access_token"], "query"
        raw = await request.read()
        body: dict[str, Any] | None
        if request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            body = {}
            for key, value in form.items():
                text = value if isinstance(value, str) else ""
                try:
                    parsed: Any = json.loads(text)
                    body[key] = parsed if isinstance(parsed, dict | list) else text
                except ValueError:
                    body[key] = text
            source = "form"
        else:
            try:
                decoded: Any = json.loads(raw) if raw.strip() else {}
                body = decoded if isinstance(decoded, dict) else None
            except ValueError:
                body = None
            source = "body"
        if body is not None and "access_token" in body:
            if token is None and isinstance(body["access_token"], str) and body["access_token"]:
                token, via = body["access_token"], source
            body["access_token"] = MASK
        return body, token, via

    def _token_error(self, token: str | None, product: Product) -> tuple[GraphError, bool] | None:
        if token is None:
            return NO_TOKEN, False
        hashed = token_digest(token)
        if hashed in self._expired:
            expired = _graph_time(self._expired[hashed])
            message = (
                "Error validating access token: Session has expired on "
                f"{expired}. The current time is {_graph_time(time.time())}."
            )
            return GraphError(_AUTH_STATUS[product], 190, message, 463), True
        if self._valid is not None and hashed not in self._valid:
            message = "Invalid OAuth access token - Cannot parse access token"
            return GraphError(_AUTH_STATUS[product], 190, message), True
        return None

    def _graph_error(self, error: GraphError, product: Product, www: bool = False) -> web.Response:
        headers = {}
        if www:
            headers["WWW-Authenticate"] = (
                f'OAuth "Facebook Platform" "invalid_token" "{error.message}"'
            )
        return json_answer(error.http_status, error.body(product), headers)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        account_id = request.match_info["id"]
        body, token, via = await self._read_send(request)
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.path,  # never the query string: it may hold access_token
            "product": None,
            "account_id": account_id,
            "recipient": None,
            "token": token is not None,
            "token_via": via,
            "body": body,
            "status": None,
        }
        return await self._logged(
            record, lambda: self._answer(request, body, token, account_id, record)
        )

    async def _answer(
        self,
        request: web.Request,
        body: dict[str, Any] | None,
        token: str | None,
        account_id: str,
        record: dict[str, Any],
    ) -> web.StreamResponse:
        product: Product = "whatsapp"
        if body is not None and body.get("messaging_product") != "whatsapp":
            product = "messenger"
        record["product"] = product
        refused = self._token_error(token, product)
        if refused is not None:
            return self._graph_error(refused[0], product, www=refused[1])
        if body is None:
            return self._graph_error(
                GraphError(
                    400,
                    100,
                    "(#100) Invalid parameter",
                    details="The request body is not valid JSON.",
                ),
                product,
            )
        if product == "whatsapp" and body.get("status") == "read":
            if not isinstance(body.get("message_id"), str):
                return self._graph_error(
                    GraphError(
                        400,
                        100,
                        "(#100) The parameter message_id is required.",
                        details="The parameter message_id is required.",
                    ),
                    product,
                )
            return json_answer(200, {"success": True})
        recipient = self._recipient(body, product)
        if recipient is None:
            name = "to" if product == "whatsapp" else "recipient"
            return self._graph_error(
                GraphError(
                    400,
                    100,
                    f"(#100) The parameter {name} is required.",
                    details=f"The parameter {name} is required.",
                ),
                product,
            )
        record["recipient"] = recipient
        if self._is_throttled(account_id):
            return self._graph_error(THROTTLED[product], product)
        injection = INJECTIONS.get(recipient[-4:], {}).get(product)
        if isinstance(injection, GraphError):
            return self._graph_error(injection, product, www=injection.code == 190)
        special = await self._special(injection, "graph.facebook.com")
        if special is not None:
            return special
        if injection == "no_id":
            if product == "whatsapp":
                return json_answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": recipient, "wa_id": recipient}],
                        "messages": [],
                    },
                )
            return json_answer(200, {"recipient_id": recipient})
        if product == "whatsapp":
            message_id = _wamid()
            answer = {
                "messaging_product": "whatsapp",
                "contacts": [{"input": recipient, "wa_id": recipient}],
                "messages": [{"id": message_id}],
            }
        else:
            if "message" not in body and "sender_action" in body:
                return json_answer(200, {"recipient_id": recipient})
            message_id = _mid()
            answer = {"recipient_id": recipient, "message_id": message_id}
        opaque = body.get("biz_opaque_callback_data")
        self._sent[message_id] = _Sent(
            product, account_id, recipient, _ms(), opaque if isinstance(opaque, str) else None
        )
        response = await answer_now(request, json_answer(200, answer))
        if injection != "no_callbacks":
            self._after_answer(lambda: self._after_send(message_id))
        return response

    @staticmethod
    def _recipient(body: dict[str, Any], product: Product) -> str | None:
        if product == "whatsapp":
            to = body.get("to")
            return to if isinstance(to, str) and to else None
        recipient = body.get("recipient")
        if isinstance(recipient, dict):
            psid = recipient.get("id")
            if isinstance(psid, str | int) and not isinstance(psid, bool) and str(psid):
                return str(psid)
        return None
