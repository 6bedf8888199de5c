"""Google RCS Business Messaging's wire format, translated to and from the Messages API's terms
(docs: PROVIDERS.md section 4, messages.v1.20.0.yaml). Pure: no I/O, no HTTP library.

Sending (`POST {rbm}/v1/phones/{+E.164}/agentMessages?messageId=...&agentId=...`)
- The path: the number with its `+` (RBM's form, legal as is in a path segment, as Google's own
  examples write it), every other reserved character percent-encoded; `messageId` is our
  message_uuid (so a try repeated after a crash is the same message to RBM), `agentId` the
  account's external_id as stored.
- The body, an AgentMessage: text -> `contentMessage.text`; image/video/file ->
  `contentMessage.contentInfo.fileUrl`; card -> `richCard.standaloneCard{cardOrientation
  (rcs.card_orientation, default VERTICAL), thumbnailImageAlignment (rcs.image_alignment, when
  given), cardContent}`; carousel -> `richCard.carouselCard{cardWidth (rcs.card_width, default
  MEDIUM), cardContents}`; a card's content is `{title, description: text, media{height:
  media_height?, contentInfo{fileUrl: media_url, thumbnailUrl?, forceRefresh?}},
  suggestions?}` (`media_description` has no RBM field and is dropped); custom -> its object is
  the AgentMessage, merged verbatim. `suggestions` (wherever the message has them) map as
  PROVIDERS.md 4g: reply -> `reply{text, postbackData}`; dial -> `dialAction{phoneNumber}` (a
  `+` added when missing: RBM wants E.164 with it); view_location -> `viewLocationAction
  {latLong{latitude, longitude} (numbers when the strings are), label}`; share_location ->
  `shareLocationAction{}`; open_url -> `openUrlAction{url, description}`; open_url_in_webview
  -> `openUrlAction{url, application: WEBVIEW, webviewViewMode?, description}`;
  create_calendar_event -> `createCalendarEventAction{startTime, endTime, title,
  description}`; any `fallback_url` -> the action's `fallbackUrl`. A suggestion of another type
  is dropped.
- `rcs.category` -> `messageTrafficType` (service-request -> SERVICEREQUEST, the others
  upper-cased). `ttl` seconds -> `"<n>s"`; without one, `"259200s"`, the Messages API's
  documented default (72 hours). A custom AgentMessage's own `messageTrafficType`, `ttl` or
  `expireTime` wins over these.
- A message_type RCS does not have raises ValueError: the request was checked first.

Answers (`rbm_succeeded`, `rbm_refusal`)
- Success: 200 with an AgentMessage (a JSON object), or 409 ALREADY_EXISTS (the messageId was
  used already: that message was sent; RBM is idempotent on it).
- The Google error model `{"error": {"code", "message", "status"}}`, by its `status` first, else
  the HTTP code: NOT_FOUND/404 -> 1300 (not RCS-capable, or the agent not launched there: the
  failover trigger); INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE/400 -> 1020;
  PERMISSION_DENIED/403 -> 1282; UNAUTHENTICATED/401 -> retry (an expired OAuth token: the
  caller refreshes it and tries again); RESOURCE_EXHAUSTED/429 -> throttled retry (1000);
  UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ABORTED, UNKNOWN/5xx -> retry; any other 4xx ->
  1282. Detail: `RBM error {HTTP status} {status}: {message}` (clipped and redacted as Graph's).
- No Google error (not JSON, no `error`): 5xx and 401 retry, 429 a throttled retry, anything
  else permanent 1331, detail `RBM answered HTTP 404 (not JSON)`. A 2xx that is not an
  AgentMessage is retried (the same messageId cannot send twice). `after` comes from
  `Retry-After` as for Graph. Callers ask `rbm_succeeded` first: a 409 ALREADY_EXISTS given
  here anyway is classified as any other 4xx.

Callbacks (`rbm_events`: `payload` the verified push body, `decoded` its `message.data` decoded)
- `eventType` DELIVERED / READ -> ProviderStatus delivered / read (provider_id `messageId`, our
  uuid; account `agentId`; event_id `eventId`); TTL_EXPIRATION_REVOKED -> rejected 1360 (the
  ttl ran out undelivered, and RBM revoked it); IS_TYPING and TTL_EXPIRATION_REVOKE_FAILED
  (inconclusive: the message may yet arrive) and any other type are ignored.
- A customer's message (`senderPhoneNumber`, `messageId`, `agentId`): `text` -> text;
  `userFile.payload{fileUri, fileName, mimeType}` -> image/video/audio/vcard/file by its MIME
  type, `{url, name?}`; `suggestionResponse{postbackData, text, type}`: a suggested reply (type
  REPLY, or none) -> `reply{id: postbackData, title: text}`, a suggested action (ACTION) ->
  `button{payload: postbackData, text}`, as the Messages API spec says of each; `location
  {latitude, longitude}` -> `location{lat, long}`. Sender without its `+`. Anything else (the
  spec's RCS inbound has no `unsupported`) is skipped, as is an event without `agentId`, an id
  or a sender.
- `at`: `sendTime` (RFC 3339), else the push's `message.publishTime`, else 0.0, which the caller
  reads as "now". Nothing here raises on any decoded JSON.
"""

from __future__ import annotations

import calendar
import math
import re
from typing import Any
from urllib.parse import quote, urlencode

from ..domain.models import InboundInput, OutboundMessage
from ..domain.providers import (
    ProviderEvent,
    ProviderInbound,
    ProviderStatus,
    ProviderStatusName,
    Refusal,
)
from ..domain.rules import retry_after_seconds
from .meta_wire import clip, json_body, number_of, text_of

DEFAULT_TTL_SECONDS = 259200  # the Messages API's documented default for RCS

_TRAFFIC = {
    "authentication": "AUTHENTICATION",
    "transaction": "TRANSACTION",
    "promotion": "PROMOTION",
    "service-request": "SERVICEREQUEST",
    "acknowledgement": "ACKNOWLEDGEMENT",
}

# Sending ------------------------------------------------------------------------------------


def rbm_request(message: OutboundMessage) -> dict[str, Any]:
    """The AgentMessage body for this message (module docstring, "Sending")."""
    content = message.content
    kind = message.message_type
    options = content.get("rcs") or {}
    body: dict[str, Any]
    if kind == "custom":
        body = dict(content["custom"])
    else:
        body = {"contentMessage": _content(kind, content, options)}
    category = options.get("category")
    if category in _TRAFFIC and "messageTrafficType" not in body:
        body["messageTrafficType"] = _TRAFFIC[category]
    if "ttl" not in body and "expireTime" not in body:
        ttl = content.get("ttl")
        seconds = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None
        body["ttl"] = f"{seconds if seconds is not None else DEFAULT_TTL_SECONDS}s"
    return body


def _content(kind: str, content: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any]
    if kind == "text":
        out = {"text": content["text"]}
    elif kind in ("image", "video", "file"):
        out = {"contentInfo": {"fileUrl": content[kind]["url"]}}
    elif kind == "card":
        card: dict[str, Any] = {"cardOrientation": options.get("card_orientation") or "VERTICAL"}
        if options.get("image_alignment"):
            card["thumbnailImageAlignment"] = options["image_alignment"]
        card["cardContent"] = _card(content["card"])
        out = {"richCard": {"standaloneCard": card}}
    elif kind == "carousel":
        carousel = {
            "cardWidth": options.get("card_width") or "MEDIUM",
            "cardContents": [_card(c) for c in content["carousel"]["cards"]],
        }
        out = {"richCard": {"carouselCard": carousel}}
    else:
        raise ValueError(f"RCS has no {kind!r} message")
    suggestions = _suggestions(content.get("suggestions"))
    if suggestions:
        out["suggestions"] = suggestions
    return out


def _card(card: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"fileUrl": card["media_url"]}
    if card.get("thumbnail_url"):
        info["thumbnailUrl"] = card["thumbnail_url"]
    if isinstance(card.get("media_force_refresh"), bool):
        info["forceRefresh"] = card["media_force_refresh"]
    media: dict[str, Any] = {}
    if card.get("media_height"):
        media["height"] = card["media_height"]
    media["contentInfo"] = info
    out: dict[str, Any] = {"title": card["title"], "description": card["text"], "media": media}
    suggestions = _suggestions(card.get("suggestions"))
    if suggestions:
        out["suggestions"] = suggestions
    return out


def _suggestions(given: Any) -> list[dict[str, Any]]:
    if not isinstance(given, list):
        return []
    return [s for s in (_suggestion(g) for g in given if isinstance(g, dict)) if s is not None]


def _suggestion(given: dict[str, Any]) -> dict[str, Any] | None:
    kind = given.get("type")
    common = {"text": given.get("text"), "postbackData": given.get("postback_data")}
    if kind == "reply":
        return {"reply": common}
    action: dict[str, Any] = dict(common)
    if given.get("fallback_url"):
        action["fallbackUrl"] = given["fallback_url"]
    if kind == "dial":
        number = str(given.get("phone_number", ""))
        action["dialAction"] = {"phoneNumber": number if number.startswith("+") else "+" + number}
    elif kind == "view_location":
        lat_long = {
            "latitude": _coordinate(given.get("latitude")),
            "longitude": _coordinate(given.get("longitude")),
        }
        action["viewLocationAction"] = {"latLong": lat_long, "label": given.get("pin_label")}
    elif kind == "share_location":
        action["shareLocationAction"] = {}
    elif kind == "open_url":
        action["openUrlAction"] = {"url": given.get("url"), "description": given.get("description")}
    elif kind == "open_url_in_webview":
        url_action = {"url": given.get("url"), "application": "WEBVIEW"}
        if given.get("view_mode"):
            url_action["webviewViewMode"] = given["view_mode"]
        url_action["description"] = given.get("description")
        action["openUrlAction"] = url_action
    elif kind == "create_calendar_event":
        action["createCalendarEventAction"] = {
            "startTime": given.get("start_time"),
            "endTime": given.get("end_time"),
            "title": given.get("title"),
            "description": given.get("description"),
        }
    else:
        return None
    return {"action": action}


def _coordinate(value: Any) -> Any:
    """A Vonage coordinate (a string) as the number RBM's LatLng holds, when it is one."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _phone(number: str) -> str:
    return quote("+" + number.removeprefix("+"), safe="+")


def rbm_path(message: OutboundMessage, message_uuid: str, agent_id: str) -> str:
    """The path and query of the send (relative to CHATAPP_RBM_URL)."""
    query = urlencode({"messageId": message_uuid, "agentId": agent_id}, quote_via=quote)
    return f"/v1/phones/{_phone(message.to)}/agentMessages?{query}"


def rbm_revoke_path(to: str, message_uuid: str, agent_id: str) -> str:
    """The path and query of the revocation (`DELETE`) of a message not yet delivered."""
    query = urlencode({"agentId": agent_id}, quote_via=quote)
    return f"/v1/phones/{_phone(to)}/agentMessages/{quote(message_uuid, safe='')}?{query}"


# Answers ------------------------------------------------------------------------------------


def _google_error(body: bytes) -> tuple[Any, dict[str, Any] | None]:
    data = json_body(body)
    error = data.get("error") if isinstance(data, dict) else None
    return data, error if isinstance(error, dict) else None


def rbm_succeeded(status: int, body: bytes) -> bool:
    """Whether RBM took the message: 200 with an AgentMessage, or 409 ALREADY_EXISTS."""
    if status == 200:
        data, error = _google_error(body)
        return isinstance(data, dict) and error is None
    if status == 409:
        return (_google_error(body)[1] or {}).get("status") == "ALREADY_EXISTS"
    return False


# (retry, throttled, Vonage code)
_Rule = tuple[bool, bool, str]
_RETRY: _Rule = (True, False, "1331")
_STATUSES: dict[str, _Rule] = {
    "NOT_FOUND": (False, False, "1300"),
    "INVALID_ARGUMENT": (False, False, "1020"),
    "FAILED_PRECONDITION": (False, False, "1020"),
    "OUT_OF_RANGE": (False, False, "1020"),
    "PERMISSION_DENIED": (False, False, "1282"),
    "UNAUTHENTICATED": _RETRY,
    "RESOURCE_EXHAUSTED": (True, True, "1000"),
    "UNAVAILABLE": _RETRY,
    "INTERNAL": _RETRY,
    "DEADLINE_EXCEEDED": _RETRY,
    "ABORTED": _RETRY,
    "UNKNOWN": _RETRY,
}
_HTTP: dict[int, _Rule] = {
    404: _STATUSES["NOT_FOUND"],
    400: _STATUSES["INVALID_ARGUMENT"],
    403: _STATUSES["PERMISSION_DENIED"],
    401: _RETRY,
    429: _STATUSES["RESOURCE_EXHAUSTED"],
}


def rbm_refusal(status: int, body: bytes, retry_after: str | None) -> Refusal:
    """What an answer that did not take the message means (module docstring, "Answers")."""
    data, error = _google_error(body)
    rule: _Rule
    if error is not None:
        name = error.get("status") if isinstance(error.get("status"), str) else None
        if name in _STATUSES:
            rule = _STATUSES[name]
        elif status in _HTTP:
            rule = _HTTP[status]
        else:
            rule = _RETRY if status >= 500 else (False, False, "1282")
        message = error.get("message")
        detail = f"RBM error {status} {clip(name)}" if name else f"RBM error {status}"
        if isinstance(message, str) and message:
            detail += f": {clip(message)}"
    else:
        if status >= 500 or status == 401 or 200 <= status < 300:
            rule = _RETRY
        elif status == 429:
            rule = _STATUSES["RESOURCE_EXHAUSTED"]
        else:
            rule = (False, False, "1331")
        why = "not JSON" if data is None else "no error"
        detail = f"RBM answered HTTP {status} ({why})"
    retry, throttled, code = rule
    after = retry_after_seconds(retry_after) if retry else None
    return Refusal(retry, code, detail, throttled=throttled, after=after)


# Callbacks ----------------------------------------------------------------------------------

_STATUS_EVENTS: dict[str, ProviderStatusName] = {"DELIVERED": "delivered", "READ": "read"}
_REVOKED_DETAIL = "RBM event TTL_EXPIRATION_REVOKED: not delivered within its ttl, revoked"


def rbm_events(payload: Any, decoded: Any) -> list[ProviderEvent]:
    """The events of a verified RBM push (module docstring, "Callbacks")."""
    if not isinstance(decoded, dict):
        return []
    agent = text_of(decoded.get("agentId"))
    if agent is None:
        return []
    at = _rfc3339(decoded.get("sendTime"))
    if at is None:
        push = payload.get("message") if isinstance(payload, dict) else None
        at = _rfc3339(push.get("publishTime")) if isinstance(push, dict) else None
    when = 0.0 if at is None else at
    event_id = text_of(decoded.get("eventId"))
    message_id = text_of(decoded.get("messageId"))
    event_type = decoded.get("eventType")
    if event_type is not None:
        if message_id is None or not isinstance(event_type, str):
            return []
        if event_type in _STATUS_EVENTS:
            status = _STATUS_EVENTS[event_type]
            return [ProviderStatus("rcs", agent, message_id, status, when, event_id=event_id)]
        if event_type == "TTL_EXPIRATION_REVOKED":
            revoked = ProviderStatus(
                "rcs", agent, message_id, "rejected", when, "1360", _REVOKED_DETAIL, event_id
            )
            return [revoked]
        return []
    sender = text_of(decoded.get("senderPhoneNumber"))
    provider_id = message_id or event_id
    parsed = _inbound(decoded)
    if sender is None or provider_id is None or parsed is None:
        return []
    message_type, content = parsed
    inbound = InboundInput("rcs", "", sender.removeprefix("+"), message_type, content)
    return [ProviderInbound("rcs", agent, inbound, provider_id)]


def _inbound(decoded: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    text = decoded.get("text")
    if isinstance(text, str):
        return "text", {"text": text}
    response = decoded.get("suggestionResponse")
    if isinstance(response, dict):
        postback, shown = text_of(response.get("postbackData")), response.get("text")
        if postback is None or not isinstance(shown, str):
            return None
        if response.get("type") == "ACTION":
            return "button", {"button": {"payload": postback, "text": shown}}
        return "reply", {"reply": {"id": postback, "title": shown}}
    user_file = decoded.get("userFile")
    if isinstance(user_file, dict):
        file = user_file.get("payload")
        if not isinstance(file, dict):
            return None
        url = text_of(file.get("fileUri")) or text_of(file.get("fileUrl"))
        if url is None:
            return None
        kind = _file_kind(file.get("mimeType"))
        media: dict[str, Any] = {"url": url}
        if text_of(file.get("fileName")):
            media["name"] = file["fileName"]
        return kind, {kind: media}
    location = decoded.get("location")
    if isinstance(location, dict):
        lat, long = number_of(location.get("latitude")), number_of(location.get("longitude"))
        if lat is None or long is None:
            return None
        return "location", {"location": {"lat": lat, "long": long}}
    return None


def _file_kind(mime: Any) -> str:
    if not isinstance(mime, str):
        return "file"
    mime = mime.lower()
    if mime in ("text/vcard", "text/x-vcard"):
        return "vcard"
    for kind in ("image", "video", "audio"):
        if mime.startswith(kind + "/"):
            return kind
    return "file"


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
    r"(Z|z|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 time (nanoseconds allowed, as Google sends), or None."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    fraction = float(match.group(7)) if match.group(7) else 0.0
    zone = match.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds + fraction
