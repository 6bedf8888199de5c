"""The served spec: every fix applies to the published file and is written down in docs/."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from chatapp_accounts.api.openapi import (
    APPLICATION_FIXES,
    FIXES,
    apply_fixes,
    load_published,
    load_published_application,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spec-fixes.md"


def test_published_copy_is_verbatim() -> None:
    shared = (
        Path(__file__).resolve().parents[3] / "shared" / "spec" / "external-accounts.v0.1.5.yaml"
    )
    ours = (
        Path(__file__).resolve().parents[2]
        / "src/chatapp_accounts/api/spec/external-accounts.v0.1.5.yaml"
    )
    if shared.exists():
        assert ours.read_bytes() == shared.read_bytes()


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
