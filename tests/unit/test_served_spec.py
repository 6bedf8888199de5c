"""The served spec: every fix applies to the published file and is written down in docs/."""

from __future__ import annotations

import hashlib
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
