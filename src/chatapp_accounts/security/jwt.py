"""Bearer auth with Vonage application JWTs (RS256), and a cache of verified tokens.

The rules (docs/authentication.md): `application_id`, `iat` and `jti` are required; `exp` is
optional (absent means iat + 15 minutes) and a lifetime over 24 hours is refused; `nbf` is honoured;
a small clock skew is tolerated; only RS256 is accepted. An `acl` claim, when present, must
cover the request's path.

Clients reuse a token for many requests, so a verified token is remembered (bounded, never
past its expiry) and a reused token costs no signature check. The application's current key
is still looked up on every request, and a cached token is only good while that key is the
one it was verified with: deleting the application or replacing its key ends the token at once,
in every process, since every process reads the same database.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ..domain.models import ApplicationKey

DEFAULT_LIFETIME = 15 * 60
MAX_LIFETIME = 24 * 60 * 60


class TokenRejected(Exception):
    """The token does not authenticate anyone (401). The reason is for logs, never for clients."""


class AclDenied(Exception):
    """A valid token whose `acl` covers no path of this request (403)."""


@dataclass(frozen=True, slots=True)
class Verified:
    application_id: str
    api_key: str  # of the tenant it acts as (for the access log)
    public_key: str  # the key it was verified with
    not_before: float
    expires: float
    acl: tuple[re.Pattern[str], ...] | None


_ACL_PARTS = {"/**": "(?:/.*)?", "**": ".*", "*": "[^/]+"}


def acl_pattern(path: str) -> re.Pattern[str]:
    """Vonage's ACL paths: `*` is exactly one path segment, `**` zero or more of them, so
    `/*/chatapp-accounts/**` covers `/beta/chatapp-accounts` itself and all below it."""
    parts = re.split(r"(/\*\*|\*\*|\*)", path)
    return re.compile("".join(_ACL_PARTS.get(p) or re.escape(p) for p in parts) + r"\Z")


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"`{name}` is not a number")
    return float(value)


class JwtVerifier:
    def __init__(
        self,
        *,
        leeway: float = 30,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        on_hit: Callable[[], None] | None = None,
        on_signature_check: Callable[[], None] | None = None,
    ) -> None:
        self._on_hit = on_hit
        self._on_check = on_signature_check
        self._leeway = leeway
        self._lock = threading.Lock()  # the cache is shared by the threads that run use cases
        self._cache: OrderedDict[str, Verified] = OrderedDict()
        self._cache_size = cache_size
        self._keys: dict[str, RSAPublicKey] = {}
        self._clock = clock
        self.hits = 0
        self.signature_checks = 0

    def __len__(self) -> int:
        return len(self._cache)

    def api_key_of(self, token: str, *, valid_only: bool = False) -> str | None:
        """The api_key of the tenant a token verified earlier acts as (None if unknown, or
        with `valid_only` if it is not valid now)."""
        with self._lock:
            verified = self._cache.get(token)
        if verified is None:
            return None
        if valid_only and not (
            verified.not_before - self._leeway <= self._clock() <= verified.expires + self._leeway
        ):
            return None
        return verified.api_key

    def claimed_application(self, token: str) -> str | None:
        """The application a token names: the one it was verified for when it is remembered,
        else its unverified `application_id` claim (None for a malformed token)."""
        with self._lock:
            verified = self._cache.get(token)
        if verified is not None:
            return verified.application_id
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        application_id = claims.get("application_id")
        return application_id if isinstance(application_id, str) and application_id else None

    def verify(self, token: str, path: str, key: ApplicationKey | None) -> ApplicationKey:
        """`key`, read now for the application the token claims (claimed_application), once
        the token is shown to be signed with it; or TokenRejected / AclDenied."""
        now = self._clock()
        with self._lock:
            verified = self._cache.get(token)
        if verified is not None:
            if (
                key is not None
                and key.public_key == verified.public_key
                and verified.not_before - self._leeway <= now <= verified.expires + self._leeway
            ):
                with self._lock:
                    if token in self._cache:
                        self._cache.move_to_end(token)
                    self.hits += 1
                if self._on_hit is not None:
                    self._on_hit()
                self._check_acl(verified, path)
                return key
            with self._lock:
                self._cache.pop(token, None)
            if key is None or key.public_key != verified.public_key:
                raise TokenRejected("the application or its key changed")
        verified = self._verify_signature(token, now, key)
        self._remember(token, verified)
        self._check_acl(verified, path)
        assert key is not None
        return key

    def _check_acl(self, verified: Verified, path: str) -> None:
        if verified.acl is not None and not any(p.match(path) for p in verified.acl):
            raise AclDenied()

    def _remember(self, token: str, verified: Verified) -> None:
        with self._lock:
            self._cache[token] = verified
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _public_key(self, pem: str) -> RSAPublicKey:
        key = self._keys.get(pem)
        if key is None:
            loaded = load_pem_public_key(pem.encode())
            if not isinstance(loaded, RSAPublicKey):
                raise TokenRejected("the application's key is not RSA")
            if len(self._keys) >= 1024:
                self._keys.clear()
            self._keys[pem] = key = loaded
        return key

    def _verify_signature(self, token: str, now: float, key: ApplicationKey | None) -> Verified:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise TokenRejected("only RS256 is accepted")
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"malformed token: {type(exc).__name__}") from None
        application_id = unverified.get("application_id")
        if not isinstance(application_id, str) or not application_id:
            raise TokenRejected("`application_id` is missing")
        if key is None:
            raise TokenRejected("unknown application")
        self.signature_checks += 1
        if self._on_check is not None:
            self._on_check()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key(key.public_key),
                algorithms=["RS256"],
                leeway=self._leeway,
                options={"require": ["iat", "jti"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {type(exc).__name__}") from None
        if claims.get("application_id") != application_id:
            raise TokenRejected("`application_id` changed")  # pragma: no cover - signed
        jti = claims.get("jti")
        if not isinstance(jti, str | int) or jti == "":
            raise TokenRejected("`jti` is missing")
        iat = _number(claims, "iat")
        assert iat is not None
        exp = _number(claims, "exp")
        nbf = _number(claims, "nbf")
        expires = exp if exp is not None else iat + DEFAULT_LIFETIME
        if expires - iat > MAX_LIFETIME:
            raise TokenRejected("lifetime over 24 hours")
        if now > expires + self._leeway:
            raise TokenRejected("expired")
        verified = Verified(
            application_id=application_id,
            api_key=key.api_key,
            public_key=key.public_key,
            not_before=max(iat, nbf if nbf is not None else iat),
            expires=expires,
            acl=self._acl(claims),
        )
        return verified

    @staticmethod
    def _acl(claims: dict[str, Any]) -> tuple[re.Pattern[str], ...] | None:
        if "acl" not in claims:
            return None
        acl = claims["acl"]
        paths = acl.get("paths") if isinstance(acl, dict) else None
        if not isinstance(paths, dict):
            raise TokenRejected("`acl` must be an object with `paths`")
        return tuple(acl_pattern(p) for p in paths if isinstance(p, str))
