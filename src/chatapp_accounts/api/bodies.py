"""Request bodies and query strings, checked against the (fixed) spec.

Every problem with a field becomes one `invalid_params` entry, so a client sees all of
them at once. Properties a schema does not declare are ignored, as the published schemas
allow, except `external_id` and `provider` in a PATCH (docs/decisions.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

from ..domain import rules
from ..domain.accounts import UNSET, MessengerInput
from ..domain.errors import InvalidInput, InvalidParam
from ..domain.models import PROVIDERS, ApplicationInput, PageRequest, Provider, TenantLimits
from ..security.keys import public_key_problem

_JSON_MEDIA = "application/json"


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` (or `application/*+json`), in UTF-8: a `charset` parameter, when
    given, must name UTF-8, since the body is decoded as UTF-8 and nothing else."""
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if not (media == _JSON_MEDIA or (media.startswith("application/") and media.endswith("+json"))):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


MAX_DEPTH = 32


class JsonProblem(Exception):
    """A body that is not a strict JSON object; each API answers it in its own error shape."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise JsonProblem(f"Duplicate key `{key}` in JSON object")
        obj[key] = value
    return obj


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def strict_object(body: bytes) -> dict[str, Any]:
    """A JSON object, strictly: valid UTF-8, no duplicate keys, no NaN, nesting of at most
    MAX_DEPTH levels; JsonProblem (saying what is wrong) otherwise. The one JSON parser of
    every API's request bodies."""
    if not body.strip():
        raise JsonProblem("A JSON object is required")
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise JsonProblem(f"Malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise JsonProblem("The body is not valid UTF-8") from None
    except RecursionError:
        raise JsonProblem(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise JsonProblem("The body must be a JSON object")
    if _depth(value) > MAX_DEPTH:
        raise JsonProblem(f"JSON nested deeper than {MAX_DEPTH} levels")
    # msgspec keeps the last of duplicate keys silently; a second, strict pass refuses them.
    json.loads(body, object_pairs_hook=_reject_duplicates)
    return value


def parse_object(body: bytes) -> dict[str, Any]:
    """strict_object's, or a 400 naming the problem, never a 500."""
    try:
        return strict_object(body)
    except JsonProblem as exc:
        raise InvalidInput.one("body", str(exc)) from None


class _Checker:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: list[InvalidParam] = []

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(InvalidParam(name, reason))

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        check: Any = None,
        label: str | None = None,
    ) -> str | None:
        label = label or name
        if name not in self.data:
            if required:
                self.fail(label, f"Missing `{label}` field")
            return None
        value = self.data[name]
        if not isinstance(value, str):
            self.fail(label, f"`{label}` must be a string")
            return None
        problem = check(value) if check else rules.bounded_text(value, label, 10_000)
        if problem:
            self.fail(label, problem)
            return None
        return value

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


def _applications(c: _Checker) -> str | Any | None:
    """`applications`: an array of at most one application id. Returns UNSET when absent."""
    if "applications" not in c.data:
        return UNSET
    value = c.data["applications"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        c.fail("applications", "`applications` must be an array of application ids")
        return UNSET
    if len(value) > 1:
        c.fail("applications", "There is just one application allowed per account")
        return UNSET
    if value:
        problem = rules.application_id_problem(value[0], "applications")
        if problem:
            c.fail("applications", problem)
            return UNSET
        return value[0]
    return None


def messenger_create(body: bytes) -> MessengerInput:
    c = _Checker(parse_object(body))
    external_id = c.string("external_id", required=True, check=rules.external_id_problem)
    access_token = c.string("access_token", required=True, check=rules.access_token_problem)
    name = c.string("name", check=rules.name_problem)
    application = _applications(c)
    c.done()
    assert external_id is not None and access_token is not None
    return MessengerInput(
        external_id, access_token, name, application if isinstance(application, str) else None
    )


def messenger_patch(body: bytes, external_id: str) -> MessengerInput:
    """The changes to apply: what is absent stays UNSET."""
    data = parse_object(body)
    c = _Checker(data)
    if "external_id" in data and data["external_id"] != external_id:
        c.fail("external_id", "'external_id' parameter cannot be changed")
    if "provider" in data and data["provider"] != Provider.MESSENGER.value:
        c.fail("provider", "'provider' parameter cannot be changed")
    name = c.string("name", check=rules.name_problem)
    token = c.string("access_token", check=rules.access_token_problem)
    application = _applications(c)
    c.done()
    return MessengerInput(
        name=UNSET if name is None else name,
        access_token=UNSET if token is None else token,
        application_id=application,
    )


def link_body(body: bytes) -> str:
    c = _Checker(parse_object(body))
    application = c.string("application", required=True, check=rules.application_id_problem)
    c.done()
    assert application is not None
    return application


# --- The admin API (docs/operations.md) -------------------------------------------------

PROVISION_FIELDS = ("provider", "external_id", "name", "access_token", "phone_number_id",
                    "waba_id")  # fmt: skip


def _operator_body(body: bytes, fields: tuple[str, ...], required: tuple[str, ...]) -> _Checker:
    """An admin body: only `fields` (a misspelt field is refused, not ignored), strings, those
    of `required` present. Their values are the use case's to check (the CLI's checks)."""
    data = parse_object(body)
    c = _Checker(data)
    for name in sorted(set(data) - set(fields)):
        c.fail(name, f"not a field of this body ({', '.join(fields)})")
    for name in fields:
        c.string(name, required=name in required, check=lambda _: None)
    return c


def provision_body(body: bytes) -> dict[str, Any]:
    """`accounts.provision_account`'s keyword arguments (the CLI's `accounts provision`
    options) from the admin API's body."""
    c = _operator_body(body, PROVISION_FIELDS, ("provider", "external_id"))
    raw = c.data.get("provider")
    provider = _provider(c, raw if isinstance(raw, str) else None)
    c.done()
    return {**c.data, "provider": provider}


def credentials_body(body: bytes) -> str:
    """The new access token of a live account (the CLI's `accounts set-token`)."""
    c = _operator_body(body, ("access_token",), ("access_token",))
    c.done()
    return str(c.data["access_token"])


def page_param(
    errors: list[InvalidParam],
    query: Mapping[str, str],
    name: str,
    default: int,
    maximum: int | None,
) -> int:
    """A page query parameter: 1 to 9 ASCII digits, at least 1 and at most `maximum`; a
    problem is added to `errors` (and `default` answered) otherwise."""
    raw = query.get(name)
    if raw is None:
        return default
    # ASCII digits only: int() would also take a sign, spaces and other scripts' digits.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= rules.QUERY_INT_DIGITS_MAX):
        reason = f"`{name}` must be an integer of at most {rules.QUERY_INT_DIGITS_MAX} digits"
        errors.append(InvalidParam(name, reason))
        return default
    value = int(raw)
    if value < 1 or (maximum is not None and value > maximum):
        bounds = f"between 1 and {maximum}" if maximum else "at least 1"
        errors.append(InvalidParam(name, f"`{name}` must be {bounds}"))
        return default
    return value


def _provider(c: _Checker, raw: str | None) -> Provider | None:
    """The provider named, if any: a problem with `provider` for a name that is none."""
    provider = None if raw is None else Provider.parse(raw)
    if raw is not None and provider is None:
        c.fail("provider", f"`provider` must be one of: {', '.join(PROVIDERS)}")
    return provider


def list_query(query: Mapping[str, str]) -> PageRequest:
    c = _Checker({})
    provider = _provider(c, query.get("provider"))
    page_number = page_param(c.errors, query, "page_number", 1, None)
    page_size = page_param(c.errors, query, "page_size", 20, rules.PAGE_SIZE_MAX)
    c.done()
    return PageRequest(page_number, page_size, provider)


def applications_query(query: Mapping[str, str]) -> PageRequest:
    c = _Checker({})
    page = page_param(c.errors, query, "page", 1, None)
    page_size = page_param(c.errors, query, "page_size", 10, rules.PAGE_SIZE_MAX)
    c.done()
    return PageRequest(page, page_size)


# --- Application API v2 ---------------------------------------------------------------

_WEBHOOKS: dict[str, dict[str, tuple[str, ...]]] = {
    # capability -> webhook -> allowed http methods
    "voice": {
        "answer_url": ("GET", "POST"),
        "fallback_answer_url": ("GET", "POST"),
        "event_url": ("GET", "POST"),
    },
    "messages": {"inbound_url": ("POST",), "status_url": ("POST",)},
    "rtc": {"event_url": ("GET", "POST")},
}
_TIMEOUTS: dict[str, dict[str, tuple[int, int]]] = {
    "answer_url": {"connection_timeout": (300, 1000), "socket_timeout": (1000, 5000)},
    "fallback_answer_url": {"connection_timeout": (300, 1000), "socket_timeout": (1000, 5000)},
    "event_url": {"connection_timeout": (300, 1000), "socket_timeout": (1000, 10000)},
}
_ADDRESS_MAX = 2048


def _check_webhook(c: _Checker, path: str, hook: Any, methods: tuple[str, ...], name: str) -> None:
    if not isinstance(hook, dict):
        c.fail(path, "must be an object")
        return
    if "address" in hook:
        address = hook["address"]
        if not isinstance(address, str) or not address:
            c.fail(f"{path}.address", "must be a URL")
        elif rules.has_control_chars(address) or len(address) > _ADDRESS_MAX:
            c.fail(f"{path}.address", f"must be a URL of at most {_ADDRESS_MAX} characters")
        elif not address.lower().startswith(("http://", "https://")):
            c.fail(f"{path}.address", "must be an http or https URL")
    if "http_method" in hook and hook["http_method"] not in methods:
        c.fail(f"{path}.http_method", f"must be one of: {', '.join(methods)}")
    for key, (low, high) in _TIMEOUTS.get(name, {}).items():
        if key in hook:
            value = hook[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                c.fail(f"{path}.{key}", f"must be an integer between {low} and {high}")


_KNOWN_CAPABILITIES = ("voice", "messages", "rtc", "vbc")


def _check_capabilities(c: _Checker, capabilities: Any) -> dict[str, Any] | None:
    """The spec's capabilities are objects and their webhooks are checked; other capability
    names (Vonage has more than the spec lists) are kept as given."""
    if not isinstance(capabilities, dict):
        c.fail("capabilities", "must be an object")
        return None
    for cap in _KNOWN_CAPABILITIES:
        if cap not in capabilities:
            continue
        config = capabilities[cap]
        if not isinstance(config, dict):
            c.fail(f"capabilities.{cap}", "must be an object")
            continue
        hooks = _WEBHOOKS.get(cap)
        if hooks is None or "webhooks" not in config:
            continue
        webhooks = config["webhooks"]
        if not isinstance(webhooks, dict):
            c.fail(f"capabilities.{cap}.webhooks", "must be an object")
            continue
        for hook_name, hook in webhooks.items():
            path = f"capabilities.{cap}.webhooks.{hook_name}"
            if hook_name in hooks:
                _check_webhook(c, path, hook, hooks[hook_name], hook_name)
    return capabilities


def _check_public_key(c: _Checker, keys: Any) -> str | None:
    if not isinstance(keys, dict):
        c.fail("keys", "must be an object")
        return None
    if "public_key" not in keys:
        return None
    value = keys["public_key"]
    if not isinstance(value, str):
        c.fail("keys.public_key", "must be a string")
        return None
    problem = public_key_problem(value)
    if problem:
        c.fail("keys.public_key", problem)
        return None
    return value


def _check_privacy(c: _Checker, privacy: Any) -> dict[str, Any] | None:
    if not isinstance(privacy, dict):
        c.fail("privacy", "must be an object")
        return None
    if "improve_ai" not in privacy:
        return {}
    if not isinstance(privacy["improve_ai"], bool):
        c.fail("privacy.improve_ai", "must be a boolean")
        return None
    return {"improve_ai": privacy["improve_ai"]}


def application_body(body: bytes) -> ApplicationInput:
    """Absent objects are absent; present ones (null included) must be objects."""
    data = parse_object(body)
    c = _Checker(data)
    name = c.string("name", required=True, check=lambda v: rules.bounded_text(v, "name", 255, 1))
    capabilities = _check_capabilities(c, data["capabilities"]) if "capabilities" in data else None
    public_key = _check_public_key(c, data["keys"]) if "keys" in data else None
    privacy = _check_privacy(c, data["privacy"]) if "privacy" in data else None
    c.done()
    assert name is not None
    return ApplicationInput(name, capabilities, public_key, privacy)


def limits_body(body: bytes) -> TenantLimits:
    """`{"requests_per_second": n | null, "messages_per_second": n | null}` (admin API): both
    replaced, one left out is null (the default); their values are the use case's to check."""
    data = parse_object(body)
    unknown = sorted(set(data) - {"requests_per_second", "messages_per_second"})
    if unknown:
        raise InvalidInput.one(unknown[0], "not a field of a tenant's limits")
    return TenantLimits(data.get("requests_per_second"), data.get("messages_per_second"))
