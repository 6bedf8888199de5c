"""The served spec: every fix applies to the published file and is written down in docs/."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from openapi_spec_validator import validate

from chatapp_accounts.api.message_bodies import mend_null_properties, outbound_messages
from chatapp_accounts.api.openapi import (
    APPLICATION_FIXES,
    FIXES,
    MESSAGES_FIXES,
    apply_fixes,
    load_published,
    load_published_application,
    load_published_messages,
    served_admin_spec_bytes,
    served_application_spec_bytes,
    served_messages_spec_bytes,
    served_sandbox_spec_bytes,
    served_spec_bytes,
)
from chatapp_accounts.domain import errors
from chatapp_accounts.domain.models import CHANNEL_PROVIDERS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spec-fixes.md"


# SHA-256 of the files as Vonage published them (External Accounts v0.1.5 from
# Nexmo/api-specification, definitions/external-accounts.yml; Application API v2.1.0 with its
# common errors): the package keeps them byte for byte and applies its fixes in code.
PUBLISHED = {
    "external-accounts.v0.1.5.yaml": "3f5612567068c2c40a87133e4adb52e178443a1a888b09dff5b1f954de04e90b",
    "application.v2.1.0.yaml": "91470f69ad7093053e7badf3ff56a18935d8b5e27924136ab18d80887866d8f9",
    "common/common_errors.yml": "95e69c3c0589a5440fa97622d2757e484991fb2da4af3f6fa2b72ad46aa3c9b0",
}


def test_published_copies_are_verbatim() -> None:
    folder = Path(__file__).resolve().parents[2] / "src/chatapp_accounts/api/spec"
    for name, digest in PUBLISHED.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_fixed_spec_is_valid_openapi() -> None:
    validate(apply_fixes(load_published()))


def test_every_fix_changes_something_and_is_documented() -> None:
    docs = DOCS.read_text()
    published = load_published()
    for fix in FIXES:
        assert apply_fixes(published, [fix]) != published, fix.__name__
        assert f"`{fix.__name__}`" in docs, f"{fix.__name__} is not in docs/spec-fixes.md"


def test_get_all_is_any_of() -> None:
    spec = apply_fixes(load_published())
    assert set(spec["components"]["schemas"]["GetAllAccountResponse"]) == {"anyOf"}


def test_application_spec_loads_inlined_and_its_fixes_are_documented() -> None:
    published = load_published_application()
    assert "$ref" not in str(published).replace("'$ref': '#/components", "")
    validate(apply_fixes(published, APPLICATION_FIXES))
    docs = DOCS.read_text()
    for fix in APPLICATION_FIXES:
        assert apply_fixes(published, [fix]) != published, fix.__name__
        assert f"`{fix.__name__}`" in docs, f"{fix.__name__} is not in docs/spec-fixes.md"


SERVED: dict[str, Callable[[], bytes]] = {
    "External Accounts": served_spec_bytes,
    "Application v2": served_application_spec_bytes,
    "Messages v1": served_messages_spec_bytes,
    "Sandbox": served_sandbox_spec_bytes,
    "Admin": served_admin_spec_bytes,
}
METHODS = {"get", "post", "put", "patch", "delete"}


def tag_problems(spec: dict[str, Any]) -> list[str]:
    """What would make Swagger UI show a section twice or empty: tags differing only in case,
    tags operations use but the tags list does not declare, declared tags no operation uses."""
    declared = [t["name"] for t in spec.get("tags", [])]
    used = {
        tag
        for item in spec["paths"].values()
        for method, op in item.items()
        if method in METHODS
        for tag in op.get("tags", [])
    }
    problems = []
    folded: dict[str, set[str]] = {}
    for tag in {*declared, *used}:
        folded.setdefault(tag.casefold(), set()).add(tag)
    problems += [f"differ only in case: {sorted(s)}" for s in folded.values() if len(s) > 1]
    problems += [f"used, not declared: {t}" for t in sorted(used - set(declared))]
    problems += [f"declared, no operation: {t}" for t in declared if t not in used]
    problems += [f"declared twice: {t}" for t in set(declared) if declared.count(t) > 1]
    return problems


@pytest.mark.parametrize("name", SERVED)
def test_served_tags_are_one_section_each_and_none_empty(name: str) -> None:
    assert tag_problems(json.loads(SERVED[name]())) == []


def test_the_published_accounts_spec_has_the_whatsapp_tag_defect_the_fix_mends() -> None:
    """Declared `Whatsapp`, used `WhatsApp`: /docs showed an empty "Whatsapp" section."""
    assert tag_problems(load_published()) == [
        "differ only in case: ['WhatsApp', 'Whatsapp']",
        "used, not declared: WhatsApp",
        "declared, no operation: Whatsapp",
    ]
    served = json.loads(served_spec_bytes())
    whatsapp = [t for t in served["tags"] if t["name"].casefold() == "whatsapp"]
    assert [t["name"] for t in whatsapp] == ["WhatsApp"]
    assert "Managing your" in whatsapp[0]["description"]  # the declared tag's description kept


# --- Messages: the channels this server refuses ------------------------------------------

SCHEMAS = "#/components/schemas/"
REFUSED = ("sms", "mms", "email")


def _validator(spec: dict[str, Any], schema: str) -> Any:
    components = mend_null_properties(spec["components"])
    return jsonschema_rs.validator_for(
        {"$ref": SCHEMAS + schema, "components": {"schemas": components["schemas"]}}
    )


def _text(channel: str, **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "message_type": "text", "to": "447700900000",
            "from": "447700900001", "text": "Hello", **extra}  # fmt: skip


SMS = _text("sms")
MMS = {**_text("mms"), "message_type": "image", "image": {"url": "https://example.com/a.png"}}
WHATSAPP = _text("whatsapp")


def test_the_server_refuses_the_channels_the_served_spec_leaves_out() -> None:
    """What the served send schema takes, the server takes; what it left out the server
    refuses (1100), though the published schema takes it."""
    published, served = load_published_messages(), json.loads(served_messages_spec_bytes())
    as_published, as_served = (_validator(s, "AnyOutboundMessage") for s in (published, served))
    for body in (SMS, MMS, {**WHATSAPP, "failover": [SMS]}):
        assert as_published.is_valid(body), body
        assert not as_served.is_valid(body), body
        with pytest.raises(errors.UnsupportedChannel):
            outbound_messages(json.dumps(body).encode())
    assert as_served.is_valid(WHATSAPP)
    assert as_served.is_valid({**WHATSAPP, "failover": [_text("viber_service")]})
    assert [m.channel for m in outbound_messages(json.dumps(WHATSAPP).encode())] == ["whatsapp"]


def _channel_enums(node: Any, schemas: dict[str, Any], seen: frozenset[str]) -> set[str]:
    """Every `channel` enum value a schema reaches (through any keyword)."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMAS) and ref not in seen:
            found |= _channel_enums(schemas[ref[len(SCHEMAS) :]], schemas, seen | {ref})
        channel = (node.get("properties") or {}).get("channel")
        if isinstance(channel, dict):
            found |= set(channel.get("enum") or [])
        for key, value in node.items():
            if key != "$ref":
                found |= _channel_enums(value, schemas, seen)
    elif isinstance(node, list):
        for value in node:
            found |= _channel_enums(value, schemas, seen)
    return found


def test_the_served_messages_spec_reaches_only_served_channels() -> None:
    """From its operations and webhooks the served spec names the four channels the server
    takes, and no other; the published one names seven."""
    published, served = load_published_messages(), json.loads(served_messages_spec_bytes())
    for spec, expected in (
        (published, {*CHANNEL_PROVIDERS, *REFUSED}),
        (served, set(CHANNEL_PROVIDERS)),
    ):
        roots = [spec["paths"], spec["x-webhooks"]]
        assert _channel_enums(roots, spec["components"]["schemas"], frozenset()) == expected


def test_refused_channels_schemas_carry_the_not_served_mark() -> None:
    schemas = json.loads(served_messages_spec_bytes())["components"]["schemas"]
    marked = {name for name, s in schemas.items() if s.get("x-not-served") is True}
    for name in marked:
        assert schemas[name]["description"].startswith("Not served by this server: "), name
    # Every schema named after a refused channel (OutboundSMSText, channelOptionsMms, ...).
    own = {n for n in schemas if any(c in n.casefold() for c in REFUSED)}
    assert len(own) >= 20
    assert own <= marked, sorted(own - marked)
    # Schemas of the channels served, and those shared with them, are not marked.
    for name in ("OutboundWhatsAppText", "OutboundRCSCard", "messageStatusViber", "Text", "Image"):
        assert name not in marked and "x-not-served" not in schemas[name], name
    # Nothing the operations and webhooks still reach is marked.
    served = json.loads(served_messages_spec_bytes())
    reached = {
        ref[len(SCHEMAS) :]
        for ref in _refs(
            [served["paths"], served["x-webhooks"], served["components"]["requestBodies"]]
        )
    }
    closure = set(reached)
    while True:
        more = {r[len(SCHEMAS) :] for n in closure for r in _refs(schemas[n])} - closure
        if not more:
            break
        closure |= more
    assert not closure & marked, sorted(closure & marked)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if str(node.get("$ref", "")).startswith(SCHEMAS) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_messages_fixes_change_something_are_documented_and_keep_the_spec_valid() -> None:
    docs = DOCS.read_text()
    published = load_published_messages()
    before = json.dumps(published)
    for fix in MESSAGES_FIXES:
        assert apply_fixes(published, [fix]) != published, fix.__name__
        assert f"`{fix.__name__}`" in docs, f"{fix.__name__} is not in docs/spec-fixes.md"
    assert json.dumps(published) == before  # the cached published copy is untouched
    validate(json.loads(served_messages_spec_bytes()))


def test_the_admin_spec_is_valid_openapi() -> None:
    validate(json.loads(served_admin_spec_bytes()))
