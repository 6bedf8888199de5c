"""The OpenAPI documents this server serves: the published External Accounts spec (v0.1.5, kept
verbatim in spec/) and the Application API v2 spec, with the fixes docs/spec-fixes.md lists
applied. Each fix is one function here and one entry in docs/spec-fixes.md; tests apply the
same functions to the published file."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from ..domain import rules
from ..domain.models import CHANNEL_PROVIDERS, PROVIDERS

Spec = dict[str, Any]
PUBLISHED = "external-accounts.v0.1.5.yaml"
SERVED_VERSION = "0.1.5+chatapp-accounts.3"
SERVED_APPLICATION_VERSION = "2.1.0+chatapp-accounts.1"

_ERROR_PROPS = {
    "type": {"type": "string"},
    "title": {"type": "string"},
    "detail": {"type": "string"},
    "instance": {"type": "string"},
}


PUBLISHED_APPLICATION = "application.v2.1.0.yaml"


def _read(*parts: str) -> Spec:
    text = resources.files("chatapp_accounts.api").joinpath("spec", *parts).read_text("utf-8")
    # libyaml's parser with the safe constructor: safe_load's answer in a ninth of its time
    # (0.09 s a spec at every start-up), where PyYAML was built with it.
    spec: Spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    return spec


def load_published() -> Spec:
    return _read(PUBLISHED)


def load_published_application() -> Spec:
    """The Application API v2 spec, with its `common/common_errors.yml` references inlined."""
    common = _read("common", "common_errors.yml")

    def inline(node: Any, doc: Spec) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("common/"):
                target: Any = common
                for part in ref.split("#/", 1)[1].split("/"):
                    target = target[part]
                return inline(copy.deepcopy(target), common)
            if isinstance(ref, str) and ref.startswith("#/") and doc is common:
                target = common
                for part in ref[2:].split("/"):
                    target = target[part]
                return inline(copy.deepcopy(target), common)
            return {k: inline(v, doc) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v, doc) for v in node]
        return node

    spec = _read(PUBLISHED_APPLICATION)
    inlined: Spec = inline(spec, spec)
    return inlined


def _operations(spec: Spec) -> list[tuple[str, str, Spec]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "patch", "put", "delete"}
    ]


def _body_schema(op: Spec) -> Spec:
    schema: Spec = op["requestBody"]["content"]["application/json"]["schema"]
    return schema


def fix_get_all_any_of(spec: Spec) -> None:
    """`GetAllAccountResponse` is `allOf` of three schemas (which would demand `access_token`
    from every account): it means `anyOf`."""
    schema = spec["components"]["schemas"]["GetAllAccountResponse"]
    schema["anyOf"] = schema.pop("allOf")


def fix_instance_is_string(spec: Spec) -> None:
    """`instance` is `type: string` with `example: null`: it is a string, the request id."""
    for _, _, op in _operations(spec):
        for response in op.get("responses", {}).values():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            instance = schema.get("properties", {}).get("instance")
            if instance is not None:
                instance.pop("example", None)
                instance["description"] = "The request id (also in the X-Request-Id header)"


def fix_declare_error_bodies(spec: Spec) -> None:
    """404 responses declare no body: they carry an error object. 204 stays empty. Bodies that are
    not JSON get 415, bodies over the configured limit 413, both in the same error shape."""
    schemas = spec["components"]["schemas"]
    schemas["ErrorResponse"] = {"type": "object", "properties": copy.deepcopy(_ERROR_PROPS)}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for _, _, op in _operations(spec):
        responses = op["responses"]
        if "404" in responses:
            responses["404"]["content"] = copy.deepcopy(error)
        if "requestBody" in op:
            responses["413"] = {
                "description": "Payload Too Large.",
                "content": copy.deepcopy(error),
            }
            responses["415"] = {
                "description": "Unsupported Media Type: a body that is not `application/json` "
                "in UTF-8 (a request with no body at all is a 400).",
                "content": copy.deepcopy(error),
            }


def fix_add_rcs(spec: Spec) -> None:
    """`rcs` is missing from the provider enums (the 0.1.6 revision adds it)."""
    for _, _, op in _operations(spec):
        for param in op.get("parameters", []):
            if param["name"] == "provider":
                param["schema"]["enum"] = list(PROVIDERS)
    provider = spec["components"]["schemas"]["AccountResponse"]["properties"]["provider"]
    provider["enum"] = list(PROVIDERS)
    provider["description"] = "The provider (one of `messenger, viber_service_msg, whatsapp, rcs`)."


def fix_bounds(spec: Spec) -> None:
    """Page parameters and strings declare no bounds: the served spec declares those of
    docs/contract.md."""
    external_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": rules.EXTERNAL_ID_MAX,
        "pattern": rules.EXTERNAL_ID_PATTERN,
    }
    text = {"type": "string", "maxLength": rules.NAME_MAX, "pattern": rules.CONTROL_PATTERN}
    token = {
        "type": "string",
        "minLength": 1,
        "maxLength": rules.ACCESS_TOKEN_MAX,
        "pattern": rules.CONTROL_PATTERN,
    }
    app_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": rules.APPLICATION_ID_MAX,
        "pattern": rules.CONTROL_PATTERN,
    }
    for _, _, op in _operations(spec):
        for param in op.get("parameters", []):
            if param["name"] == "page_number":
                param["schema"].update(minimum=1, maximum=rules.QUERY_INT_MAX)
            elif param["name"] == "page_size":
                param["schema"].update(minimum=1, maximum=rules.PAGE_SIZE_MAX)
        if "requestBody" not in op:
            continue
        props = _body_schema(op)["properties"]
        for name, bound in (("name", text), ("access_token", token), ("application", app_id)):
            if name in props:
                props[name].update(bound)
        if "external_id" in props:
            props["external_id"].update(external_id)
        if "applications" in props:
            props["applications"]["items"] = copy.deepcopy(app_id)


def fix_patch_max_items(spec: Spec) -> None:
    """The PATCH body declares no `maxItems` for `applications`: one application per account
    holds there too."""
    patch = spec["paths"]["/messenger/{external_id}"]["patch"]
    _body_schema(patch)["properties"]["applications"].update(minItems=0, maxItems=1)


def fix_list_totals(spec: Spec) -> None:
    """`total_items` / `total_pages` are in the list body but undeclared."""
    props = spec["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"
    ]
    props["total_items"] = {"type": "integer", "minimum": 0, "example": 4}
    props["total_pages"] = {"type": "integer", "minimum": 1, "example": 1}


def fix_declare_400(spec: Spec) -> None:
    """List and link declare no 400, though their parameters and bodies can be invalid: they
    declare the same 400 body as create."""
    bad_request = spec["paths"]["/messenger"]["post"]["responses"]["400"]
    spec["components"]["responses"] = {"BadRequest": copy.deepcopy(bad_request)}
    for path in ("/", "/{provider}/{external_id}/applications"):
        for op in spec["paths"][path].values():
            op["responses"]["400"] = {"$ref": "#/components/responses/BadRequest"}


def fix_tag_case(spec: Spec) -> None:
    """The tags list declares `Whatsapp`, the WhatsApp operation is tagged `WhatsApp`: Swagger
    UI shows the declared tag as an empty section (with the description) above the used one
    (with the operation). A declared tag takes the spelling its operations use, so the one
    section has both, and the operation keeps its tag (generated clients name their classes,
    and Swagger UI its links, after it)."""
    used = {tag for _, _, op in _operations(spec) for tag in op.get("tags", [])}
    by_fold = {tag.casefold(): tag for tag in used}
    for declared in spec.get("tags", []):
        declared["name"] = by_fold.get(declared["name"].casefold(), declared["name"])


def fix_server_and_version(spec: Spec) -> None:
    """The served copy names this server (a relative URL) and says it is a fixed copy."""
    spec["servers"] = [{"url": "/beta/chatapp-accounts"}]
    spec["info"]["version"] = SERVED_VERSION


FIXES: list[Callable[[Spec], None]] = [
    fix_get_all_any_of,
    fix_instance_is_string,
    fix_declare_error_bodies,
    fix_add_rcs,
    fix_bounds,
    fix_patch_max_items,
    fix_list_totals,
    fix_declare_400,
    fix_tag_case,
    fix_server_and_version,
]


# --- Application API v2 ---------------------------------------------------------------


def _app_bodies(spec: Spec) -> list[Spec]:
    return [
        spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        for path, method in (("/", "post"), ("/{id}", "put"))
    ]


def fix_app_page_bounds(spec: Spec) -> None:
    """`page` and `page_size` declare no bounds, yet the list's own 400 example says `page_size`
    "must be between 1 and 100": `page` 1..999999999 (query integers are at most 9 digits) and
    `page_size` 1..100 are declared."""
    for param in spec["paths"]["/"]["get"]["parameters"]:
        param["schema"]["minimum"] = 1
        if param["name"] == "page_size":
            param["schema"]["maximum"] = rules.PAGE_SIZE_MAX
        elif param["name"] == "page":
            param["schema"]["maximum"] = rules.QUERY_INT_MAX


def fix_app_bodies_are_objects(spec: Spec) -> None:
    """The create and update bodies say `required: [name]` but not `type: object`, which makes
    `null` or `42` a valid body: `type: object` is declared."""
    for body in _app_bodies(spec):
        body["type"] = "object"


def fix_app_string_bounds(spec: Spec) -> None:
    """The string rules of docs/decisions.md, applied to the Application API too: `name` is 1 to 255
    characters with no control characters; a webhook `address` is an http(s) URL of at most
    2048 characters."""
    address = {
        "type": "string",
        "maxLength": 2048,
        "pattern": r"^[hH][tT][tT][pP][sS]?://[^\u0000-\u001f\u007f-\u009f]*$",
    }

    def bound_addresses(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties", {})
            if isinstance(props.get("address"), dict) and "http_method" in props:
                props["address"].update(address)
            for value in node.values():
                bound_addresses(value)

    for body in _app_bodies(spec):
        body["properties"]["name"].update(
            minLength=1, maxLength=rules.NAME_MAX, pattern=rules.CONTROL_PATTERN
        )
        bound_addresses(body["properties"]["capabilities"])


def fix_app_server_and_version(spec: Spec) -> None:
    """The served copy names this server (a relative URL) and says it is a fixed copy."""
    spec["servers"] = [{"url": "/v2/applications"}]
    spec["info"]["version"] = SERVED_APPLICATION_VERSION


APPLICATION_FIXES: list[Callable[[Spec], None]] = [
    fix_app_page_bounds,
    fix_app_bodies_are_objects,
    fix_app_string_bounds,
    fix_app_server_and_version,
]


def apply_fixes(spec: Spec, fixes: list[Callable[[Spec], None]] | None = None) -> Spec:
    fixed = copy.deepcopy(spec)
    for fix in FIXES if fixes is None else fixes:
        fix(fixed)
    return fixed


def _json(spec: Spec) -> bytes:
    return json.dumps(spec, ensure_ascii=False).encode("utf-8")


@lru_cache(maxsize=1)
def served_spec_bytes() -> bytes:
    """The External Accounts API's served spec, at /beta/chatapp-accounts/openapi.json."""
    return _json(apply_fixes(load_published()))


@lru_cache(maxsize=1)
def served_application_spec_bytes() -> bytes:
    """The Application API's served spec, at /v2/applications/openapi.json."""
    return _json(apply_fixes(load_published_application(), APPLICATION_FIXES))


PUBLISHED_MESSAGES = "messages.v1.20.0.yaml"
SANDBOX = "sandbox.v1.yaml"
SERVED_MESSAGES_VERSION = "1.20.0+chatapp-accounts.2"


@lru_cache(maxsize=1)
def load_published_messages() -> Spec:
    """Vonage's Messages API v1 spec, as published (its schemas validate sends and webhooks)."""
    return _read(PUBLISHED_MESSAGES)


def fix_messages_server_and_version(spec: Spec) -> None:
    """The served copy names this server (paths are under /v1) and says it is a fixed copy."""
    spec["servers"] = [{"url": "/v1", "description": "this server"}]
    spec["info"]["version"] = SERVED_MESSAGES_VERSION


def fix_status_enums(spec: Spec) -> None:
    """Each messageStatus{Channel} is allOf its part (status enum ["read"]) and
    messageStatusBase (submitted, delivered, rejected, undeliverable): no status satisfies
    both. The statuses of a channel are the union of the two."""
    schemas = spec["components"]["schemas"]
    base = schemas["messageStatusBase"]["properties"]["status"]["enum"]
    for name, schema in schemas.items():
        if not name.startswith("messageStatus") or "allOf" not in schema:
            continue
        for part in schema["allOf"]:
            status = part.get("properties", {}).get("status")
            if isinstance(status, dict) and "enum" in status:
                status["enum"] = [*base, *(s for s in status["enum"] if s not in base)]
    schemas["messageStatusBase"]["properties"]["status"]["enum"] = [*base, "read"]


_SCHEMAS = "#/components/schemas/"


def _schema_channels(node: Any, schemas: Spec, seen: frozenset[str] = frozenset()) -> set[str]:
    """The `channel` values a schema pins, through its $refs, allOf, oneOf and anyOf; not
    through its other properties (a send's `failover` names every channel)."""
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_SCHEMAS):
        name = ref[len(_SCHEMAS) :]
        return set() if name in seen else _schema_channels(schemas[name], schemas, seen | {name})
    channel = (node.get("properties") or {}).get("channel")
    found = set(channel.get("enum") or []) if isinstance(channel, dict) else set()
    for key in ("allOf", "oneOf", "anyOf"):
        for part in node.get(key, []):
            found |= _schema_channels(part, schemas, seen)
    return found


def _reached(node: Any, schemas: Spec) -> set[str]:
    """The component schemas `node` reaches through $refs, transitively."""
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith(_SCHEMAS):
                name = ref[len(_SCHEMAS) :]
                if name not in found:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(v for k, v in item.items() if k != "$ref")
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _channel_choices(spec: Spec) -> list[tuple[Spec, str]]:
    """The schemas that choose among the channels, with the keyword holding the choice: the
    send's failover items, its body, and the status and inbound webhooks' bodies."""
    schemas = spec["components"]["schemas"]
    webhooks = [
        spec["x-webhooks"][name]["{$request.body#/callback}"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        for name in ("message-status", "inbound-message")
    ]
    # The failover items first: every variant of the send reaches them.
    return [
        (schemas["Failover"]["properties"]["failover"]["items"], "anyOf"),
        (schemas["AnyOutboundMessage"], "oneOf"),
        *((schema, "oneOf") for schema in webhooks),
    ]


def _names(channels: Iterable[str]) -> str:
    return ", ".join(f"`{c}`" for c in sorted(channels))


NOT_SERVED = "Not served by this server"


def fix_unserved_channels(spec: Spec) -> None:
    """The spec offers seven channels; this server takes four (`CHANNEL_PROVIDERS`: those
    whose senders are accounts) and answers `sms`, `mms` and `email` with 422 Unsupported
    channel (1100). Those channels' variants leave the send's `oneOf`, the failover items'
    `anyOf` and the webhooks' `oneOf`s, each of which says so; the schemas only they use stay
    under components (Vonage's names), marked `x-not-served: true` with a description
    starting "Not served by this server"."""
    schemas = spec["components"]["schemas"]
    served = set(CHANNEL_PROVIDERS)
    dropped: dict[str, set[str]] = {}  # schema name -> the refused channels that use it
    refused: set[str] = set()
    for choice, keyword in _channel_choices(spec):
        kept, left_out = [], set()
        for variant in choice[keyword]:
            channels = _schema_channels(variant, schemas)
            if not channels:
                raise ValueError(f"a channel variant pins no channel: {variant}")
            if channels <= served:
                kept.append(variant)
                continue
            left_out |= channels - served
            for name in _reached(variant, schemas):
                dropped.setdefault(name, set()).update(channels - served)
        note = (
            f"This server takes the {_names(served)} channels: the published spec's "
            f"{_names(left_out)} variants are left out here (the server answers them with 422, "
            f"Unsupported channel, 1100); their schemas are kept, marked `x-not-served`."
        )
        choice[keyword] = kept
        refused |= left_out
        choice["description"] = " ".join(filter(None, [choice.get("description"), note]))
    still_used = _reached({k: v for k, v in spec.items() if k != "components"}, schemas)
    still_used |= _reached({k: v for k, v in spec["components"].items() if k != "schemas"}, schemas)
    for name, channels in dropped.items():
        if name in still_used:
            continue
        schema = schemas[name]
        plural = len(channels) > 1
        mark = (
            f"{NOT_SERVED}: used only by the {_names(channels)} channel{'s' if plural else ''}, "
            f"which this server answers with 422, Unsupported channel (1100); it takes "
            f"{_names(served)}."
        )
        schema["description"] = "\n\n".join(filter(None, [mark, schema.get("description")]))
        schema["x-not-served"] = True
    spec["info"]["description"] = (
        spec["info"].get("description", "")
        + f"\n\n**This server** takes the {_names(served)} channels (senders that are "
        f"External Accounts); {_names(refused)} are answered with 422, Unsupported channel "
        f'(1100). Their schemas are listed, marked "{NOT_SERVED}".'
    )


MESSAGES_FIXES: list[Callable[[Spec], None]] = [
    fix_messages_server_and_version,
    fix_status_enums,
    fix_unserved_channels,
]


@lru_cache(maxsize=1)
def served_messages_spec_bytes() -> bytes:
    """The Messages API's served spec, at /v1/messages/openapi.json: the published one with
    `MESSAGES_FIXES` applied (docs/spec-fixes.md)."""
    return _json(apply_fixes(load_published_messages(), MESSAGES_FIXES))


@lru_cache(maxsize=1)
def served_sandbox_spec_bytes() -> bytes:
    """This project's own sandbox API, at /sandbox/v1/openapi.json."""
    return _json(_read(SANDBOX))


ADMIN = "admin.v1.yaml"


@lru_cache(maxsize=1)
def served_admin_spec_bytes() -> bytes:
    """This project's own admin API, at /admin/v1/openapi.json (docs/operations.md)."""
    return _json(_read(ADMIN))
