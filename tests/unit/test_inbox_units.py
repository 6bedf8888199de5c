"""The inbox's parts that need no server: the vendored files pinned, the search syntax, the
signature check a receiver would make, and what copy-as-curl shows."""

from __future__ import annotations

import hashlib
import json

import jwt
import pytest

from chatapp_accounts.api.inbox import ASSETS, STATIC, body_diff, curl_line
from chatapp_accounts.domain.errors import InvalidMessageParams
from chatapp_accounts.domain.models import MessageFilter
from chatapp_accounts.domain.search import search_filter
from chatapp_accounts.security.webhooks import (
    CHANGED_BODY,
    MISMATCH,
    check_signature,
    sign_webhook,
)

# Written out here as well: changing a vendored file means changing this test on purpose.
PINNED = {
    "htmx-2.0.11.min.js": "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    "htmx-ext-sse-2.2.4.min.js": "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136",
}


def test_the_vendored_files_are_the_pinned_ones() -> None:
    assert ASSETS == PINNED
    for name, digest in PINNED.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest
    assert b'htmx.defineExtension("sse"' in (STATIC / "htmx-ext-sse-2.2.4.min.js").read_bytes()
    assert b'version:"2.0.11"' in (STATIC / "htmx-2.0.11.min.js").read_bytes()


def test_search_operators_and_words() -> None:
    base = MessageFilter(number=2, size=50)
    found = search_filter(
        "account:447700900000 customer:4477009001 to:x from:y status:delivered type:text "
        "channel:whatsapp direction:inbound after:2026-12-06 before:2026-12-07T10:00:00+01:00 "
        'hello "two words"',
        base,
    )
    assert (found.number, found.size) == (2, 50)
    assert found.account == "447700900000" and found.peer == "4477009001"
    assert (found.to, found.sender, found.status) == ("x", "y", "delivered")
    assert (found.message_type, found.channel, found.direction) == ("text", "whatsapp", "inbound")
    assert found.after == 1796515200.0  # 2026-12-06T00:00:00Z
    assert found.before == 1796634000.0  # 2026-12-07T09:00:00Z
    assert found.words == ("hello", "two words")
    assert search_filter("after:1796515200").after == 1796515200.0


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("colour:red", "unknown operator colour:"),
        ("before:someday", "before: takes a date"),
        ("direction:sideways", "direction: is outbound or inbound"),
        ("status:a;b", "status: takes a word"),
        ("x" * 501, "at most 500 characters"),
        (" ".join(f"w{i}" for i in range(9)), "at most 8 words"),
    ],
)
def test_bad_searches_say_what_is_wrong(query: str, reason: str) -> None:
    with pytest.raises(InvalidMessageParams) as caught:
        search_filter(query)
    assert any(reason in p.reason for p in caught.value.params or []), caught.value.params


def test_the_signature_check_says_why() -> None:
    body = b'{"message_uuid":"m","status":"delivered"}'
    header = sign_webhook(body, "s" * 32, api_key="k", application_id="a")
    ok = check_signature(header, body, "s" * 32)
    assert ok.verified and ok.hash_matches and ok.reason is None
    assert ok.claims["application_id"] == "a" and ok.claims["payload_hash"] == ok.body_hash
    assert ok.body_hash == hashlib.sha256(body).hexdigest()

    other = check_signature(header, body, "t" * 32)
    assert not other.verified and other.hash_matches
    assert other.reason == MISMATCH
    changed = check_signature(header, body + b" ", "s" * 32)
    assert not changed.verified and not changed.hash_matches
    assert changed.reason == CHANGED_BODY
    assert check_signature(None, body, "s").reason == (
        "no Authorization header: the webhook is unsigned"
    )
    assert check_signature("Basic abc", body, "s").reason == (
        "the Authorization header is not 'Bearer <JWT>'"
    )
    assert str(check_signature("Bearer not-a-jwt", body, "s").reason).startswith(
        "the Authorization header is not a valid JWT"
    )
    none_alg = jwt.encode({"payload_hash": ok.body_hash}, "s" * 64, algorithm="HS512")
    assert check_signature("Bearer " + none_alg, body, "s" * 32).reason == (
        "the JWT is not signed with HS256"
    )
    assert check_signature(header, body, None).reason == "no signature secret to check it with"
    no_iss = jwt.encode({"iat": 1, "jti": "j", "payload_hash": ok.body_hash}, "s" * 32)
    assert check_signature("Bearer " + no_iss, body, "s" * 32).reason == (
        "the JWT has no 'iss' claim"
    )


def test_copy_as_curl_masks_the_token_and_diff_shows_the_change() -> None:
    token = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    line = curl_line("http://127.0.0.1:9/status", {"Authorization": token,
                                                   "Content-Type": "application/json"},
                     b'{"text": "it\'s"}')  # fmt: skip
    assert token not in line and "Bearer eyJhbGciO…(masked)" in line
    assert line.startswith("curl -X POST http://127.0.0.1:9/status -H")
    assert "'Content-Type: application/json'" in line
    before = json.dumps({"status": "submitted", "to": "1"}).encode()
    after = json.dumps({"status": "delivered", "to": "1"}).encode()
    diff = body_diff(before, after)
    assert '-  "status": "submitted",' in diff and '+  "status": "delivered",' in diff
    assert body_diff(before, before) == []
