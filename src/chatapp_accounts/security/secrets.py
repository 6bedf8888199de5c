"""Tenant credentials.

The api_secret is made by the server from 16 random characters of a 62-letter alphabet
(about 95 bits), so a single SHA-256 is enough to make the stored hash useless to a thief:
slow password hashes exist for low-entropy, human-chosen secrets. It also keeps Basic auth
cheap on the hot path. Comparison is constant-time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 16
SIGNATURE_SECRET_LENGTH = 32
_SCHEME = "sha256"
_MEMO_MAX = 128  # longer secrets are not ours: hashed, not remembered


def new_api_key() -> str:
    """Eight hex characters, like Vonage's api keys."""
    return secrets.token_hex(4)


def new_api_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))


def new_signature_secret() -> str:
    """The key a tenant's webhooks are signed with (HS256): 32 random letters and digits, about
    190 bits, and the 32 bytes of key RFC 7518 asks of HS256."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(SIGNATURE_SECRET_LENGTH))


ADMIN_TOKEN_PREFIX = "cat_"  # noqa: S105 - "chatapp admin token": recognisable if leaked


def new_admin_token() -> str:
    """An admin API token: 32 random bytes (256 bits), URL-safe; stored as its SHA-256."""
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _hash(secret: str) -> str:
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_SCHEME}${digest}"


_hash_recent = functools.lru_cache(maxsize=4096)(_hash)


def hash_secret(secret: str) -> str:
    """Memoized for secrets of a sane length: the secrets of the clients calling now are hashed
    once, not on every request. A pure function, so nothing can go stale; the bounded cache
    holds recent secrets in this process's memory only, where each request holds its own."""
    return _hash_recent(secret) if len(secret) <= _MEMO_MAX else _hash(secret)


def verify_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


# Compared against when the api_key is unknown, so both paths do the same work.
DUMMY_HASH = hash_secret(new_api_secret())


def session_binding(secret_hash: str) -> str:
    """What the web inbox's session cookie holds of a tenant's secret: a digest of its stored
    hash (not the hash, nor the secret), so a session ends when the secret changes."""
    return hashlib.sha256(
        b"chatapp-accounts/inbox-session/v1\x00" + secret_hash.encode()
    ).hexdigest()[:32]
