"""The verifier and its cache, with a fake key lookup and a fake clock."""

from __future__ import annotations

import time

import pytest

from chatapp_accounts.domain.models import ApplicationKey
from chatapp_accounts.security.jwt import (
    AclDenied,
    JwtVerifier,
    TokenRejected,
    acl_pattern,
)
from chatapp_accounts.security.keys import generate_rsa_key_pair
from tests.jwt_tokens import claims, sdk_token, signed

PRIVATE, PUBLIC = generate_rsa_key_pair()
PATH = "/beta/chatapp-accounts/messenger/1"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys() -> dict[str, ApplicationKey]:
    return {"app-1": ApplicationKey(1, "abcd1234", PUBLIC)}


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Verifier:
    """The verifier with the test's keys, used as a use case uses it: the key of the
    application the token claims, read, then handed to verify()."""

    def __init__(self, keys: dict[str, ApplicationKey], clock: Clock) -> None:
        self.inner = JwtVerifier(leeway=30, cache_size=3, clock=clock)
        self.keys = keys

    def verify(self, token: str, path: str) -> ApplicationKey:
        claimed = self.inner.claimed_application(token)
        key = self.keys.get(claimed) if claimed is not None else None
        return self.inner.verify(token, path, key)

    def api_key_of(self, token: str) -> str | None:
        return self.inner.api_key_of(token)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)


@pytest.fixture
def verifier(keys: dict[str, ApplicationKey], clock: Clock) -> Verifier:
    return Verifier(keys, clock)


def test_reused_token_costs_no_signature_check(verifier: Verifier) -> None:
    token = sdk_token("app-1", PRIVATE)
    for _ in range(5):
        assert verifier.verify(token, PATH).api_key == "abcd1234"
    assert verifier.signature_checks == 1
    assert verifier.hits == 4


def test_cache_is_bounded(verifier: Verifier) -> None:
    for _ in range(10):
        verifier.verify(sdk_token("app-1", PRIVATE), PATH)
    assert len(verifier) == 3


def test_cached_token_never_outlives_its_expiry(verifier: Verifier, clock: Clock) -> None:
    token = sdk_token("app-1", PRIVATE)  # exp = iat + 15 min
    verifier.verify(token, PATH)
    clock.now += 15 * 60 + 31
    with pytest.raises(TokenRejected):
        verifier.verify(token, PATH)
    assert len(verifier) == 0


def test_replaced_key_or_deleted_application_ends_cached_tokens(
    verifier: Verifier, keys: dict[str, ApplicationKey]
) -> None:
    token = sdk_token("app-1", PRIVATE)
    verifier.verify(token, PATH)
    _, other_public = generate_rsa_key_pair()
    keys["app-1"] = ApplicationKey(1, "abcd1234", other_public)
    with pytest.raises(TokenRejected):
        verifier.verify(token, PATH)
    keys["app-1"] = ApplicationKey(1, "abcd1234", PUBLIC)
    verifier.verify(token, PATH)
    del keys["app-1"]
    with pytest.raises(TokenRejected):
        verifier.verify(token, PATH)


def test_exp_defaults_to_fifteen_minutes(verifier: Verifier, clock: Clock) -> None:
    token = signed(PRIVATE, claims("app-1", iat=int(clock.now) - 16 * 60))
    with pytest.raises(TokenRejected):
        verifier.verify(token, PATH)
    fresh = signed(PRIVATE, claims("app-1", iat=int(clock.now) - 14 * 60))
    verifier.verify(fresh, PATH)


def test_clock_skew_is_tolerated(verifier: Verifier, clock: Clock) -> None:
    verifier.verify(signed(PRIVATE, claims("app-1", iat=int(clock.now) + 10)), PATH)
    with pytest.raises(TokenRejected):
        verifier.verify(signed(PRIVATE, claims("app-1", iat=int(clock.now) + 120)), PATH)


def test_acl_is_checked_on_every_use(verifier: Verifier) -> None:
    token = sdk_token("app-1", PRIVATE, acl={"paths": {"/*/chatapp-accounts/messenger/**": {}}})
    verifier.verify(token, PATH)
    with pytest.raises(AclDenied):
        verifier.verify(token, "/beta/chatapp-accounts")
    verifier.verify(token, PATH)  # a cache hit is still checked against the path
    assert verifier.hits == 2


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/*/chatapp-accounts/**", "/beta/chatapp-accounts/messenger/1", True),
        ("/*/chatapp-accounts/**", "/beta/other/x", False),
        ("/beta/chatapp-accounts/*", "/beta/chatapp-accounts/messenger/1", False),
        ("/beta/chatapp-accounts/*/*", "/beta/chatapp-accounts/messenger/1", True),
        ("/**", "/anything/at/all", True),
        ("/v1/calls/**", "/v1/calls", True),  # `**` is zero or more segments
        ("/v1/calls/**", "/v1/callsx", False),
        ("/v1/calls/**", "/v1/calls/", True),
        ("/*/chatapp-accounts/**", "/beta/chatapp-accounts", True),
        ("/*/chatapp-accounts/**", "/chatapp-accounts", False),  # `*` is one segment
        ("/*/chatapp-accounts/**", "//chatapp-accounts", False),
        ("/v1/**/calls", "/v1/calls", True),
        ("/v1/**/calls", "/v1/a/b/calls", True),
        ("/v1/**/calls", "/v1/xcalls", False),
    ],
)
def test_acl_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(acl_pattern(pattern).match(path)) is matches


def test_api_key_of_a_verified_token_only(verifier: Verifier) -> None:
    """What the access log learns of a Bearer caller: known once the token was verified."""
    other_private, _ = generate_rsa_key_pair()
    forged = sdk_token("app-1", other_private)
    with pytest.raises(TokenRejected):
        verifier.verify(forged, PATH)
    assert verifier.api_key_of(forged) is None
    token = sdk_token("app-1", PRIVATE)
    assert verifier.api_key_of(token) is None
    verifier.verify(token, PATH)
    assert verifier.api_key_of(token) == "abcd1234"
