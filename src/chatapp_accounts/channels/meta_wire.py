"""Meta's Graph API wire formats (WhatsApp Cloud API, Messenger Send API), translated to and from
the Messages API's terms (docs: PROVIDERS.md sections 1 and 2, messages.v1.20.0.yaml). Pure: no
I/O, no HTTP library; the live channels send what these functions build and hand what Meta
answers back to them.

Sending
- WhatsApp (`POST {graph}/{phone_number_id}/messages`): every body has `messaging_product:
  whatsapp`, `recipient_type: individual` and `to` without a leading `+` (a BSUID is sent as
  given). text -> `text{body, preview_url: false}` (the Messages API has no preview option, so
  previews stay off, Meta's default); image/video -> `{link, caption?}`; audio -> `{link}`;
  file -> `document{link, caption?, filename?}` (`name` -> `filename`); sticker -> `{link}` (or
  the deprecated `{id}`); reaction -> `reaction{message_id, emoji}` (unreact: `emoji: ""`, as
  Meta removes a reaction); template -> `template{name, language{policy: deterministic,
  code: whatsapp.locale or en_US}, components: [{type: body, parameters: [{type: text}...]}]}`
  (a `namespace:name` is sent as `name`; no `components` without parameters); custom -> its
  object merged into the body verbatim, except that `messaging_product` and `to` stay ours (the
  recipient recorded is the one sent to). A Vonage `context.message_uuid`, translated by the
  caller into the wamid it replies to, becomes `context{message_id}`; for a reaction it is the
  reaction's `message_id` instead, and a reaction without it raises ValueError.
- Messenger (`POST {graph}/{page_id}/messages`): `recipient.id` = `to`, `messaging_type` from
  `messenger.category` (default RESPONSE), `tag` from `messenger.tag` when given; text ->
  `message.text`; image/audio/video/file -> `message.attachment{type, payload{url,
  is_reusable: false}}`. The Messages API gives Messenger media no caption; one sent anyway is
  dropped (Meta's attachment payload has none: it would need a second message).
- A message_type the channel does not have raises ValueError: the request was checked first.

Answers (`graph_message_id`, `graph_refusal`)
- Success is a 2xx whose JSON holds the id: WhatsApp `messages[0].id`, Messenger `message_id`.
  Anything else is None, and the caller treats it as a bad answer.
- A Graph error `{"error": {"code", "error_subcode"?, "message"}}` is classified by its subcode,
  then its code (tables below, from PROVIDERS.md 1c and 2c; Graph codes do not collide between
  the two products except 100, which the subcode 2018001 tells apart). A code in no table: retry
  on HTTP 5xx, a throttled retry on HTTP 429, otherwise permanent 1282 ("rejected by
  provider": Graph refused it and said why, in the detail).
- No usable Graph error (not JSON, empty, HTML, no numeric code): HTTP 5xx -> retry, 429 ->
  throttled retry, anything else -> permanent 1331 ("provider error"), detail `Graph answered
  HTTP 404 (not JSON)` or `(no error code)`. A 2xx whose body has no id lands here too:
  permanent, since trying again could deliver it twice.
- A retry carries code 1331, or 1000 when throttled (what the message ends with if retries run
  out); `after` is the `Retry-After` header in seconds (delta-seconds or an HTTP-date; anything
  else, None).
- `detail` is `Graph error {code}/{subcode}: {message}` (no `/subcode` without one), the
  message with control characters blanked, anything shaped like an access token (`EAA...`,
  `ya29....`) replaced by `<redacted>`, cut to 200 characters. Nothing else of the body is
  ever copied.

Callbacks (`meta_events`, on a body whose signature was already checked, already decoded)
- `object: whatsapp_business_account`: each `entry[].changes[].value` with
  `metadata.phone_number_id` (the account; a change without it, or whose `field` is not
  `messages`, is skipped):
  - `statuses[]`: sent/delivered/read -> that status; failed -> `rejected`, its first error's
    code mapped through the same tables (a retry or unknown code -> 1330 "delivery failed", a
    throttle -> 1000), detail `Graph error {code}: {title or message}`; other statuses (e.g.
    `played`, `deleted`) and statuses without an id or a numeric `timestamp` are skipped.
  - `messages[]` (+ `contacts[].profile.name`, matched by `wa_id`): text -> `{text}`;
    image/video/audio/sticker -> `{type: {url, caption?}}`, document -> `file{url, name?,
    caption?}`, the url being the media's `url`, else its `link`, else its media id (Meta
    sends an id to fetch with the token; a caption is kept although the spec lists only `url`
    and `name`, so that no customer text is lost); location -> `{lat, long, name?, address?,
    url?}`; contacts -> passed through; reaction -> `{action: react, emoji}` or `{action:
    unreact}` (empty emoji), the reacted-to wamid as `context_provider_id`; interactive
    button/list replies -> `reply{id, title, description?}`; a flow reply (`nfm_reply`) ->
    `button{payload, text, subtype: flow}`; a template quick-reply `button` -> `reply{id:
    payload, title: text}` (the spec's WhatsApp `button` payload is an object, its `reply` is
    the string pair); order -> `order{catalog_id, product_items}` (numbers as strings); any
    other type -> `unsupported`. `context.id` -> `context_provider_id`. A message without
    `id` or `from`, or a media message without any reference, is skipped.
  - `errors[]` at value level are ignored (they describe no message of ours).
- `object: page` (Messenger): `entry[].id` is the page; each `entry[].messaging[]` event:
  - `message` (not `is_echo`, our own sends) -> inbound: the first attachment if it is
    image/audio/video/file with a `payload.url`, else text, else `unsupported` (other
    attachment types, e.g. location or template, too); `reply_to.mid` ->
    `context_provider_id`. The Messages API's Messenger inbound has no `reply` type, so a
    quick-reply tap arrives as the `text` it shows; its payload is dropped.
  - `delivery{mids?, watermark}` -> Watermark delivered; `read{watermark}` -> Watermark read
    (milliseconds -> seconds).
  - postbacks, reactions, optins, referrals and `standby` events are skipped.
- Anything malformed (a missing key, a wrong type) skips that item, never the callback; an
  unknown `object` gives []. Nothing here raises on any decoded JSON. Duplicates are the
  caller's concern.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import msgspec

from ..domain.models import InboundInput, OutboundMessage
from ..domain.providers import (
    ProviderEvent,
    ProviderInbound,
    ProviderStatus,
    ProviderStatusName,
    Refusal,
    Watermark,
)
from ..domain.rules import retry_after_seconds

META_OBJECTS = ("page", "whatsapp_business_account")

DETAIL_MAX = 200

# (retry, throttled, pair, Vonage code)
_Rule = tuple[bool, bool, bool, str]
_RETRY: _Rule = (True, False, False, "1331")
_THROTTLED: _Rule = (True, True, False, "1000")


def _permanent(code: str) -> _Rule:
    return (False, False, False, code)


_GRAPH_CODES: dict[int, _Rule] = {
    # Messenger (PROVIDERS.md 1c)
    1200: _RETRY,
    2: _RETRY,
    4: _THROTTLED,
    613: _THROTTLED,
    551: _permanent("1260"),
    190: _permanent("1370"),
    2018021: _permanent("1350"),
    # WhatsApp (PROVIDERS.md 2c)
    130429: _THROTTLED,
    131056: (True, True, True, "1000"),
    131000: _RETRY,
    131016: _RETRY,
    131026: _permanent("1300"),
    131047: _permanent("1340"),
    132000: _permanent("1022"),
    132001: _permanent("1022"),
    131048: _permanent("1282"),
    131049: _permanent("1282"),
    100: _permanent("1020"),
}
_GRAPH_SUBCODES: dict[int, _Rule] = {
    2018278: _permanent("1340"),  # code 10: outside the allowed window
    2018065: _permanent("1340"),
    2018001: _permanent("1300"),  # code 100: no matching user
    2018021: _permanent("1350"),
}

_CATEGORIES = {"response": "RESPONSE", "update": "UPDATE", "message_tag": "MESSAGE_TAG"}
_MESSENGER_MEDIA = ("image", "audio", "video", "file")
_WA_MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "sticker": "sticker",
    "document": "file",
}

# Sending ------------------------------------------------------------------------------------


def whatsapp_request(message: OutboundMessage, context_wamid: str | None) -> dict[str, Any]:
    """The body of `POST {graph}/{phone_number_id}/messages` for this message."""
    content = message.content
    kind = message.message_type
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.removeprefix("+"),
    }
    if kind == "text":
        body |= {"type": "text", "text": {"body": content["text"], "preview_url": False}}
    elif kind in ("image", "video", "audio", "file"):
        given = content[kind]
        wa_type = "document" if kind == "file" else kind
        media: dict[str, Any] = {"link": given["url"]}
        if kind != "audio" and "caption" in given:
            media["caption"] = given["caption"]
        if kind == "file" and "name" in given:
            media["filename"] = given["name"]
        body |= {"type": wa_type, wa_type: media}
    elif kind == "sticker":
        sticker = content["sticker"]
        ref = {"link": sticker["url"]} if "url" in sticker else {"id": sticker["id"]}
        body |= {"type": "sticker", "sticker": ref}
    elif kind == "reaction":
        if context_wamid is None:
            raise ValueError("a WhatsApp reaction needs the wamid of the message it reacts to")
        reaction = content["reaction"]
        emoji = reaction.get("emoji", "") if reaction.get("action") == "react" else ""
        body |= {"type": "reaction", "reaction": {"message_id": context_wamid, "emoji": emoji}}
        return body
    elif kind == "template":
        body |= {"type": "template", "template": _template(content)}
    elif kind == "custom":
        body = {**body, **content["custom"], "messaging_product": "whatsapp", "to": body["to"]}
    else:
        raise ValueError(f"WhatsApp has no {kind!r} message")
    if context_wamid is not None:
        body["context"] = {"message_id": context_wamid}
    return body


def _template(content: dict[str, Any]) -> dict[str, Any]:
    template = content["template"]
    options = content.get("whatsapp") or {}
    locale = options.get("locale") or "en_US"
    out: dict[str, Any] = {
        "name": str(template["name"]).rpartition(":")[2],
        "language": {"policy": "deterministic", "code": locale},
    }
    parameters = template.get("parameters") or []
    if parameters:
        out["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        ]
    return out


def messenger_request(message: OutboundMessage) -> dict[str, Any]:
    """The body of `POST {graph}/{page_id}/messages` for this message. A `caption` on Messenger
    media (which the Messages API does not define for Messenger) is dropped: Meta's attachment
    payload carries none."""
    content = message.content
    kind = message.message_type
    options = content.get("messenger") or {}
    body: dict[str, Any] = {
        "recipient": {"id": message.to},
        "messaging_type": _CATEGORIES.get(options.get("category") or "response", "RESPONSE"),
    }
    if isinstance(options.get("tag"), str):
        body["tag"] = options["tag"]
    if kind == "text":
        body["message"] = {"text": content["text"]}
    elif kind in _MESSENGER_MEDIA:
        payload = {"url": content[kind]["url"], "is_reusable": False}
        body["message"] = {"attachment": {"type": kind, "payload": payload}}
    else:
        raise ValueError(f"Messenger has no {kind!r} message")
    return body


def whatsapp_mark_read(wamid: str) -> dict[str, Any]:
    """The body that marks a customer's WhatsApp message read (same endpoint as sends)."""
    return {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}


# Answers ------------------------------------------------------------------------------------


def json_body(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def graph_message_id(status: int, body: bytes, channel: str) -> str | None:
    """The provider's id of the message a 2xx answer took, or None (not a well-formed success)."""
    if not 200 <= status < 300:
        return None
    data = json_body(body)
    if not isinstance(data, dict):
        return None
    if channel == "whatsapp":
        messages = data.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        found = first.get("id") if isinstance(first, dict) else None
    elif channel == "messenger":
        found = data.get("message_id")
    else:
        return None
    return found if isinstance(found, str) and found else None


def graph_refusal(status: int, body: bytes, retry_after: str | None) -> Refusal:
    """What an answer that took nothing means (module docstring, "Answers")."""
    data = json_body(body)
    error = data.get("error") if isinstance(data, dict) else None
    code = _int(error.get("code")) if isinstance(error, dict) else None
    if isinstance(error, dict) and code is not None:
        subcode = _int(error.get("error_subcode"))
        rule = _graph_rule(code, subcode)
        if rule is None:
            rule = _by_http(status, _permanent("1282"))
        name = f"{code}/{subcode}" if subcode is not None else str(code)
        message = error.get("message")
        detail = f"Graph error {name}"
        if isinstance(message, str) and message:
            detail += f": {clip(message)}"
    else:
        rule = _by_http(status, _permanent("1331"))
        why = "not JSON" if data is None else "no error code"
        if 200 <= status < 300:
            why = "without a message id"
        detail = f"Graph answered HTTP {status} ({why})"
    return _refusal(rule, detail, retry_after)


def _graph_rule(code: int, subcode: int | None) -> _Rule | None:
    if subcode is not None and subcode in _GRAPH_SUBCODES:
        return _GRAPH_SUBCODES[subcode]
    return _GRAPH_CODES.get(code)


def _by_http(status: int, otherwise: _Rule) -> _Rule:
    if status >= 500:
        return _RETRY
    if status == 429:
        return _THROTTLED
    return otherwise


def _refusal(rule: _Rule, detail: str, retry_after: str | None) -> Refusal:
    retry, throttled, pair, code = rule
    after = retry_after_seconds(retry_after) if retry else None
    return Refusal(retry, code, detail, throttled=throttled, pair=pair, after=after)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):
        return int(value)
    return None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_TOKEN = re.compile(r"\b(?:EAA[A-Za-z0-9]{16,}|ya29\.[A-Za-z0-9._\-]{8,})")


def clip(text: str) -> str:
    """A provider's message made fit for a detail: control characters blanked, anything shaped
    like an access token redacted, at most 200 characters."""
    text = _TOKEN.sub("<redacted>", _CONTROL.sub(" ", text)).strip()
    return text[:DETAIL_MAX]


# Callbacks ----------------------------------------------------------------------------------


def meta_events(payload: Any) -> list[ProviderEvent]:
    """The events of a verified, decoded Meta callback (module docstring, "Callbacks")."""
    if not isinstance(payload, dict):
        return []
    kind = payload.get("object")
    if kind == "whatsapp_business_account":
        return _whatsapp_events(payload)
    if kind == "page":
        return _messenger_events(payload)
    return []


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text_of(value: Any) -> str | None:
    """A non-empty string, or None (the wire modules' reading of an optional field)."""
    return value if isinstance(value, str) and value else None


def _ident(value: Any) -> str | None:
    """An id Meta may send as a string or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text_of(value)


def _seconds(value: Any, scale: float = 1.0) -> float | None:
    """Epoch time as a number or a numeric string (in 1/scale seconds), or None."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,16}(\.[0-9]{1,9})?", value):
        number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return None
    if not math.isfinite(number) or number < 0 or number > 1e16:
        return None
    return number / scale


def _whatsapp_events(payload: dict[str, Any]) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes")):
            if change.get("field", "messages") != "messages":
                continue
            value = _obj(change.get("value"))
            account = _ident(_obj(value.get("metadata")).get("phone_number_id"))
            if account is None:
                continue
            for status in _dicts(value.get("statuses")):
                event = _whatsapp_status(account, status)
                if event is not None:
                    events.append(event)
            names: dict[str, str] = {}
            for contact in _dicts(value.get("contacts")):
                wa_id = _ident(contact.get("wa_id"))
                name = text_of(_obj(contact.get("profile")).get("name"))
                if wa_id is not None and name is not None:
                    names[wa_id] = name
            for message in _dicts(value.get("messages")):
                inbound = _whatsapp_inbound(account, message, names)
                if inbound is not None:
                    events.append(inbound)
    return events


_WA_STATUSES: dict[str, ProviderStatusName] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "rejected",
}


def _whatsapp_status(account: str, status: dict[str, Any]) -> ProviderStatus | None:
    wamid = text_of(status.get("id"))
    given = status.get("status")
    name = _WA_STATUSES.get(given) if isinstance(given, str) else None
    at = _seconds(status.get("timestamp"))
    if wamid is None or name is None or at is None:
        return None
    if name != "rejected":
        return ProviderStatus("whatsapp", account, wamid, name, at)
    errors = _dicts(status.get("errors"))
    error = errors[0] if errors else {}
    code = _int(error.get("code"))
    if code is None:
        detail = "Graph status failed (no error given)"
        return ProviderStatus("whatsapp", account, wamid, "rejected", at, "1330", detail)
    rule = _graph_rule(code, None)
    vonage = "1330" if rule is None or (rule[0] and not rule[1]) else rule[3]
    text = text_of(error.get("title")) or text_of(error.get("message"))
    detail = f"Graph error {code}: {clip(text)}" if text else f"Graph error {code}"
    return ProviderStatus("whatsapp", account, wamid, "rejected", at, vonage, detail)


def _whatsapp_inbound(
    account: str, message: dict[str, Any], names: dict[str, str]
) -> ProviderInbound | None:
    wamid = text_of(message.get("id"))
    sender = _ident(message.get("from"))
    kind = message.get("type")
    if wamid is None or sender is None:
        return None
    sender = sender.removeprefix("+")
    context = text_of(_obj(message.get("context")).get("id"))
    parsed = _whatsapp_content(kind, message)
    if parsed is None:
        return None
    message_type, content, replied = parsed
    profile = names.get(sender) or names.get("+" + sender)
    if profile is None and len(names) == 1:
        profile = next(iter(names.values()))
    inbound = InboundInput("whatsapp", "", sender, message_type, content, profile_name=profile)
    return ProviderInbound("whatsapp", account, inbound, wamid, context or replied)


def _whatsapp_content(
    kind: Any, message: dict[str, Any]
) -> tuple[str, dict[str, Any], str | None] | None:
    """(message_type, content, the wamid a reaction is to), or None: skip it."""
    part = _obj(message.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        body = part.get("body")
        return ("text", {"text": body}, None) if isinstance(body, str) else None
    if isinstance(kind, str) and kind in _WA_MEDIA:
        url = text_of(part.get("url")) or text_of(part.get("link")) or _ident(part.get("id"))
        if url is None:
            return None
        vonage = _WA_MEDIA[kind]
        media: dict[str, Any] = {"url": url}
        if kind == "document" and text_of(part.get("filename")):
            media["name"] = part["filename"]
        if vonage != "sticker" and text_of(part.get("caption")):
            media["caption"] = part["caption"]
        return vonage, {vonage: media}, None
    if kind == "location":
        lat, long = part.get("latitude"), part.get("longitude")
        if number_of(lat) is None or number_of(long) is None:
            return None
        location: dict[str, Any] = {"lat": number_of(lat), "long": number_of(long)}
        for key in ("name", "address", "url"):
            if text_of(part.get(key)):
                location[key] = part[key]
        return "location", {"location": location}, None
    if kind == "contacts":
        contacts = _dicts(message.get("contacts"))
        return ("contacts", {"contacts": contacts}, None) if contacts else None
    if kind == "reaction":
        target = text_of(part.get("message_id"))
        emoji = text_of(part.get("emoji"))
        reaction = {"action": "react", "emoji": emoji} if emoji else {"action": "unreact"}
        return "reaction", {"reaction": reaction}, target
    if kind == "interactive":
        return _interactive(part)
    if kind == "button":
        payload, text = text_of(part.get("payload")), text_of(part.get("text"))
        if payload is None or text is None:
            return None
        return "reply", {"reply": {"id": payload, "title": text}}, None
    if kind == "order":
        return _order(part)
    return "unsupported", {}, None


def number_of(value: Any) -> float | None:
    """A finite JSON number (not a boolean), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _interactive(part: dict[str, Any]) -> tuple[str, dict[str, Any], None] | None:
    kind = part.get("type")
    if kind in ("button_reply", "list_reply"):
        chosen = _obj(part.get(kind))
        reply_id, title = _ident(chosen.get("id")), text_of(chosen.get("title"))
        if reply_id is None or title is None:
            return None
        reply: dict[str, Any] = {"id": reply_id, "title": title}
        if text_of(chosen.get("description")):
            reply["description"] = chosen["description"]
        return "reply", {"reply": reply}, None
    if kind == "nfm_reply":
        flow = _obj(part.get("nfm_reply"))
        raw = flow.get("response_json")
        answer = json_body(raw.encode()) if isinstance(raw, str) else None
        if not isinstance(answer, dict):
            return None
        button: dict[str, Any] = {"payload": answer, "subtype": "flow"}
        if text_of(flow.get("body")):
            button["text"] = flow["body"]
        return "button", {"button": button}, None
    return "unsupported", {}, None


def _order(part: dict[str, Any]) -> tuple[str, dict[str, Any], None] | None:
    catalog = _ident(part.get("catalog_id"))
    if catalog is None:
        return None
    items = []
    for item in _dicts(part.get("product_items")):
        items.append(
            {
                key: str(item[key])
                for key in ("product_retailer_id", "quantity", "item_price", "currency")
                if isinstance(item.get(key), str | int | float) and not isinstance(item[key], bool)
            }
        )
    return "order", {"order": {"catalog_id": catalog, "product_items": items}}, None


def _messenger_events(payload: dict[str, Any]) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for entry in _dicts(payload.get("entry")):
        page = _ident(entry.get("id"))
        if page is None:
            continue
        for event in _dicts(entry.get("messaging")):
            psid = _ident(_obj(event.get("sender")).get("id"))
            if psid is None:
                continue
            parsed = _messenger_event(page, psid, event)
            if parsed is not None:
                events.append(parsed)
    return events


def _messenger_event(page: str, psid: str, event: dict[str, Any]) -> ProviderEvent | None:
    receipts: tuple[tuple[str, Literal["delivered", "read"]], ...] = (
        ("delivery", "delivered"),
        ("read", "read"),
    )
    for name, status in receipts:
        if name in event:
            receipt = _obj(event.get(name))
            watermark = _seconds(receipt.get("watermark"), 1000.0)
            if watermark is None:
                return None
            given = receipt.get("mids")
            mids = [m for m in given if text_of(m)] if isinstance(given, list) else []
            return Watermark(page, psid, status, watermark, mids)
    message = event.get("message")
    if not isinstance(message, dict) or message.get("is_echo") is True:
        return None
    mid = text_of(message.get("mid"))
    if mid is None:
        return None
    message_type, content = "unsupported", {}
    attachments = _dicts(message.get("attachments"))
    if attachments:
        first = attachments[0]
        kind = first.get("type")
        url = text_of(_obj(first.get("payload")).get("url"))
        if isinstance(kind, str) and kind in _MESSENGER_MEDIA and url is not None:
            message_type, content = kind, {kind: {"url": url}}
    elif isinstance(message.get("text"), str):
        message_type, content = "text", {"text": message["text"]}
    replied = text_of(_obj(message.get("reply_to")).get("mid"))
    inbound = InboundInput("messenger", "", psid, message_type, content)
    return ProviderInbound("messenger", page, inbound, mid, replied)
