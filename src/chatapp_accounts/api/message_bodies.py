"""Bodies of the Messages API and the sandbox, checked against the published Messages spec
(spec/messages.v1.20.0.yaml): each (channel, message_type) is validated with its own schema
from the spec (`AnyOutboundMessage`'s variants; the inbound webhook's for the sandbox), by
jsonschema-rs, and every failure is turned into the spec's 422 (docs/messages.md)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs
import msgspec

from ..domain import rules
from ..domain.errors import (
    InvalidChannelParams,
    InvalidClientRef,
    InvalidJson,
    InvalidMessageParams,
    InvalidMessageType,
    InvalidParam,
    InvalidRecipient,
    InvalidSender,
    MessageRejected,
    UnsupportedChannel,
)
from ..domain.models import (
    CHANNEL_PROVIDERS,
    Faults,
    InboundInput,
    MessageFilter,
    OutboundMessage,
)
from ..domain.search import search_filter
from .bodies import JsonProblem, page_param, strict_object
from .openapi import load_published_messages

_encode = msgspec.json.Encoder().encode

Validator = Any
# The spec's tab titles of the channels served.
TITLES = {"messenger": "Messenger", "whatsapp": "WhatsApp", "viber_service": "Viber", "rcs": "RCS"}
# Text bounds the spec gives in its descriptions of `text`, not in a schema keyword.
TEXT_MAX = {"messenger": 640, "whatsapp": 4096, "viber_service": 1000, "rcs": 3072}
_REASON_MAX = 200


def _resolve(node: Any, components: dict[str, Any]) -> Any:
    ref = node.get("$ref") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.startswith("#/components/"):
        target: Any = {"components": components}
        for part in ref[2:].split("/"):
            target = target[part]
        return target
    return node


def _message_types(node: Any, components: dict[str, Any], depth: int = 0) -> set[str]:
    """The `message_type` enum a schema (through its allOf and $refs) pins."""
    node = _resolve(node, components)
    if not isinstance(node, dict) or depth > 8:
        return set()
    found: set[str] = set()
    enum = node.get("properties", {}).get("message_type", {}).get("enum")
    if isinstance(enum, list) and len(enum) == 1:
        found.add(enum[0])
    for part in node.get("allOf", []):
        found |= _message_types(part, components, depth + 1)
    return found


_FAILOVER = "#/components/schemas/Failover"


def _variants(group: dict[str, Any], components: dict[str, Any]) -> dict[str, Validator]:
    """message_type -> validator, for the variants of one channel's oneOf."""
    out: dict[str, Validator] = {}
    for variant in group["oneOf"]:
        types = _message_types(variant, components)
        if len(types) != 1:
            continue
        (message_type,) = types
        # `failover` is checked item by item, each against its own channel's schema: this
        # validator leaves it out (it would compile every outbound schema again).
        parts = [p for p in variant.get("allOf", [variant]) if p.get("$ref") != _FAILOVER]
        out[message_type] = jsonschema_rs.validator_for(_with_refs({"allOf": parts}, components))
    return out


def _with_refs(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the component schemas it reaches through $ref, and no others: each
    validator compiles only what it uses (all of them for each: 85 MB more per process)."""
    needed: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in needed:
                    needed[name] = components["schemas"][name]
                    pending.append(needed[name])
            pending.extend(v for k, v in node.items() if k != "$ref")
        elif isinstance(node, list):
            pending.extend(node)
    return {**schema, "components": {"schemas": needed}}


def mend_null_properties(node: Any) -> Any:
    """The spec with its one schema defect a validator refuses mended: `properties: null`
    (channelOptionsWhatsapp) is no properties (docs/messages.md, "Known defects")."""
    if isinstance(node, dict):
        return {
            k: ({} if k == "properties" and v is None else mend_null_properties(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [mend_null_properties(v) for v in node]
    return node


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = mend_null_properties(load_published_messages())
    return spec


@functools.lru_cache(maxsize=1)
def outbound_validators() -> dict[str, dict[str, Validator]]:
    spec = _spec()
    components = spec["components"]
    groups = {g["title"]: g for g in components["schemas"]["AnyOutboundMessage"]["oneOf"]}
    return {channel: _variants(groups[title], components) for channel, title in TITLES.items()}


@functools.lru_cache(maxsize=1)
def inbound_validators() -> dict[str, dict[str, Validator]]:
    spec = _spec()
    components = spec["components"]
    schema = spec["x-webhooks"]["inbound-message"]["{$request.body#/callback}"]["post"]
    one_of = schema["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    groups = {g.get("title"): g for g in one_of if "title" in g}
    return {channel: _variants(groups[title], components) for channel, title in TITLES.items()}


def _name(prefix: str, error: Any) -> str:
    path = [str(p) for p in error.instance_path]
    prop = getattr(error.kind, "property", None)
    if type(error.kind).__name__ == "Required" and isinstance(prop, str):
        path.append(prop)
    return prefix + (".".join(path) if path else "body")


def _problems(validator: Validator, instance: Any, prefix: str) -> list[InvalidParam]:
    """What the spec's schema finds wrong with `instance`, one entry per failure."""
    return [InvalidParam(_name(prefix, e), _reason(e)) for e in validator.iter_errors(instance)]


def _reason(error: Any) -> str:
    message = str(error.message)
    return message if len(message) <= _REASON_MAX else message[: _REASON_MAX - 1] + "…"


def _object(raw: bytes) -> dict[str, Any]:
    """The one strict parser of every API (api/bodies.py), in the Messages API's error."""
    try:
        return strict_object(raw)
    except JsonProblem as exc:
        raise InvalidJson(f"The request body did not contain valid JSON: {exc}") from None


def _channel(body: dict[str, Any], prefix: str) -> str:
    channel = body.get("channel")
    if not isinstance(channel, str) or channel not in CHANNEL_PROVIDERS:
        shown = channel if isinstance(channel, str) else None
        raise UnsupportedChannel(
            f"The channel {shown!r} is not supported here: messages are sent through "
            "messenger, whatsapp, viber_service and rcs accounts"
            if shown
            else "The specified channel is not supported.",
            [InvalidParam(prefix + "channel", "must be messenger, whatsapp, viber_service or rcs")],
        )
    return channel


def _classify(channel: str, params: list[InvalidParam], prefix: str) -> MessageRejected:
    """The spec's error for these failures: the recipient's, the sender's, the channel
    options' (1110) when they are all there is, else 1150 naming every bad field."""

    def top(p: InvalidParam) -> str:
        return p.name[len(prefix) :].split(".", 1)[0]

    if any(top(p) == "to" for p in params):
        return InvalidRecipient(params=[p for p in params if top(p) == "to"])
    if any(top(p) == "from" for p in params):
        return InvalidSender(params=[p for p in params if top(p) == "from"])
    if all(top(p) == channel for p in params):
        return InvalidChannelParams(params=params)
    return InvalidMessageParams(params=params)


def _outbound(body: Any, prefix: str) -> OutboundMessage:
    if not isinstance(body, dict):
        raise InvalidMessageParams(params=[InvalidParam(prefix.rstrip("."), "must be an object")])
    channel = _channel(body, prefix)
    message_type = body.get("message_type")
    validators = outbound_validators()[channel]
    if not isinstance(message_type, str) or message_type not in validators:
        raise InvalidMessageType(
            f"The message type {message_type!r} is not supported for the {channel} channel",
            [InvalidParam(prefix + "message_type", "must be one of " + ", ".join(validators))],
        )
    client_ref = body.get("client_ref")
    if isinstance(client_ref, str) and len(client_ref) > rules.CLIENT_REF_MAX:
        raise InvalidClientRef(
            params=[InvalidParam(prefix + "client_ref", "at most 100 characters")]
        )
    content = {k: v for k, v in body.items() if k != "failover"}
    params = _problems(validators[message_type], content, prefix)
    text = body.get("text")
    if message_type == "text" and isinstance(text, str) and len(text) > TEXT_MAX[channel]:
        params.append(
            InvalidParam(prefix + "text", f"must be at most {TEXT_MAX[channel]} characters")
        )
    version = body.get("webhook_version")
    if version is not None and version != "v1":
        params.append(InvalidParam(prefix + "webhook_version", "only v1 webhooks are sent"))
    webhook_url = body.get("webhook_url")
    if isinstance(webhook_url, str) and not webhook_url.startswith(("http://", "https://")):
        params.append(InvalidParam(prefix + "webhook_url", "must be an http or https URL"))
    if params:
        raise _classify(channel, params, prefix)
    return OutboundMessage(
        channel=channel,
        message_type=message_type,
        to=body["to"],
        sender=body["from"],
        content=content,
        client_ref=client_ref,
        webhook_url=webhook_url,
    )


def outbound_messages(raw: bytes) -> list[OutboundMessage]:
    """A send's body: its message, then its failover messages, in order."""
    body = _object(raw)
    messages = [_outbound(body, "")]
    failover = body.get("failover")
    if failover is not None:
        if not isinstance(failover, list) or not failover:
            raise InvalidMessageParams(
                params=[InvalidParam("failover", "must be a non-empty array of messages")]
            )
        for i, item in enumerate(failover):
            if isinstance(item, dict) and "failover" in item:
                raise InvalidMessageParams(
                    params=[InvalidParam(f"failover[{i}].failover", "a failover has no failover")]
                )
            messages.append(_outbound(item, f"failover[{i}]."))
    return messages


def message_status(raw: bytes) -> str:
    """A PATCH's body: `{"status": "read"}` or `{"status": "revoked"}`."""
    body = _object(raw)
    status = body.get("status")
    if status not in ("read", "revoked"):
        raise InvalidMessageParams(params=[InvalidParam("status", "must be read or revoked")])
    return str(status)


_SANDBOX_KEYS = ("channel", "to", "from", "message_type", "context", "profile")


def inbound_message(raw: bytes) -> InboundInput:
    """A simulated customer's message: validated as the inbound webhook it becomes."""
    body = _object(raw)
    channel = _channel(body, "")
    message_type = body.get("message_type")
    validators = inbound_validators()[channel]
    if not isinstance(message_type, str) or message_type not in validators:
        raise InvalidMessageType(
            f"The message type {message_type!r} is not one a {channel} customer sends",
            [InvalidParam("message_type", "must be one of " + ", ".join(validators))],
        )
    context = body.get("context")
    profile = body.get("profile")
    params: list[InvalidParam] = []
    if context is not None and not isinstance(context, str):
        params.append(InvalidParam("context", "must be the message_uuid replied to"))
    if context is not None and channel not in ("whatsapp", "viber_service"):
        params.append(InvalidParam("context", f"a {channel} message has no context"))
    name = profile.get("name") if isinstance(profile, dict) else None
    if profile is not None and (channel != "whatsapp" or not isinstance(name, str)):
        params.append(InvalidParam("profile", 'only WhatsApp\'s, as {"name": ...}'))
    content = {k: v for k, v in body.items() if k not in _SANDBOX_KEYS}
    # What the webhook will be, with stand-ins for what the server adds.
    candidate = {
        **content,
        "channel": channel,
        "message_type": message_type,
        "to": body.get("to"),
        "from": body.get("from"),
        "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
        "timestamp": "2025-01-01T00:00:00.000Z",
    }
    if channel in ("whatsapp", "rcs"):
        candidate["context_status"] = "none"
    params += _problems(validators[message_type], candidate, "")
    if params:
        raise _classify(channel, params, "")
    return InboundInput(
        channel=channel,
        to=body["to"],
        sender=body["from"],
        message_type=message_type,
        content=content,
        context=context,
        profile_name=name,
    )


def messages_query(params: dict[str, str]) -> MessageFilter:
    """The sandbox listing's query: page_number, page_size (as the accounts list), account,
    direction, status, and `q`, a search (domain/search.py)."""
    problems: list[InvalidParam] = []
    page = page_param(problems, params, "page_number", 1, None)
    size = page_param(problems, params, "page_size", 10, rules.PAGE_SIZE_MAX)
    direction = params.get("direction")
    if direction is not None and direction not in ("outbound", "inbound"):
        problems.append(InvalidParam("direction", "must be outbound or inbound"))
    status = params.get("status")
    if status is not None and (len(status) > 16 or not status.isalpha()):
        problems.append(InvalidParam("status", "must be a status, such as delivered"))
    account = params.get("account")
    if account is not None and not rules.could_be_external_id(account):
        problems.append(InvalidParam("account", "must be an account's external_id"))
    if problems:
        raise InvalidMessageParams(params=problems)
    query = MessageFilter(page, size, account, direction, status)
    return search_filter(params["q"], query) if params.get("q") else query


def webhook_body(raw: bytes) -> bytes:
    """An edited webhook body (edit and resend): a JSON object, kept compact."""
    return _encode(_object(raw))


def faults_body(raw: bytes) -> Faults:
    """A PUT of an account's fault switches: `{"delay": 2.5, "fail": "rejected"}`, each
    optional (a PUT replaces them all: `delay` left out is 0, `fail` left out or null is
    none). Only the types are checked here; the bounds are the use case's (rules.py)."""
    body = _object(raw)
    problems = [InvalidParam(k, "not a fault switch: delay or fail") for k in body
                if k not in ("delay", "fail")]  # fmt: skip
    delay, seconds = body.get("delay", 0), None
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        try:
            seconds = float(delay)
        except OverflowError:  # an integer past any float: out of bounds all the same
            seconds = float("inf")
    if seconds is None:
        problems.append(InvalidParam("delay", "must be a number of seconds"))
    fail = body.get("fail")
    if fail is not None and not isinstance(fail, str):
        problems.append(InvalidParam("fail", "must be rejected, undeliverable or null"))
    if problems or seconds is None:
        raise InvalidMessageParams(params=problems)
    return Faults(seconds, fail)
