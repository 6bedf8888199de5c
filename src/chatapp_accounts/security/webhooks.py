"""Webhook signatures as Vonage's Messages API makes them: `Authorization: Bearer <JWT>`, HS256
with the tenant's signature secret, claims `iat`, `jti` (unique), `iss` ("Vonage"),
`payload_hash` (hex SHA-256 of the exact body bytes sent), `api_key` and `application_id`. A
receiver checks the token with `vonage_jwt.verify_signature(token, secret)` and the body against
`payload_hash`."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import jwt
import msgspec

from ..domain.models import SignatureCheck

# PyJWT's JWS layer, given the claims already encoded (msgspec: a third of the signing time).
_jws = jwt.PyJWS()
_encode = msgspec.json.Encoder().encode


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign_webhook(
    body: bytes,
    signature_secret: str,
    *,
    api_key: str,
    application_id: str,
    now: float | None = None,
) -> str:
    """The value of the webhook's Authorization header."""
    claims = {
        "iat": int(time.time() if now is None else now),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": payload_hash(body),
        "api_key": api_key,
        "application_id": application_id,
    }
    return "Bearer " + _jws.encode(_encode(claims), signature_secret, algorithm="HS256")


# Claims every webhook signature carries (sign_webhook), and how far in the future its `iat`
# may be (clocks differ).
REQUIRED_CLAIMS = ("iat", "jti", "iss", "payload_hash")
LEEWAY_SECONDS = 60
MISMATCH = (
    "the JWT's HS256 signature does not match the signature secret it was checked with (a "
    "wrong secret, or one replaced since the webhook was signed)"
)
CHANGED_BODY = (
    "the JWT's payload_hash is not the SHA-256 of the body received (the body was changed "
    "after it was signed)"
)


def check_signature(authorization: str | None, body: bytes, secret: str | None) -> SignatureCheck:
    """What a receiver finds checking a webhook as Vonage's documentation says: the Bearer
    token verifies as HS256 with the signature secret, carries Vonage's claims, and its
    `payload_hash` is the SHA-256 of the body received. The claims are read even when it does
    not verify, to show why. The one check of the inbox, the sandbox API, `webhooks receive`
    and the pytest plugin's receiver."""
    body_hash = payload_hash(body)

    def failed(reason: str, claims: dict[str, Any] | None = None) -> SignatureCheck:
        claims = claims or {}
        matches = claims.get("payload_hash") == body_hash
        return SignatureCheck(claims, body_hash, matches, False, reason)

    if not authorization:
        return failed("no Authorization header: the webhook is unsigned")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return failed("the Authorization header is not 'Bearer <JWT>'")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return failed(f"the Authorization header is not a valid JWT ({exc})")
    if header.get("alg") != "HS256":
        return failed("the JWT is not signed with HS256", claims)
    if secret is None:
        return failed("no signature secret to check it with", claims)
    try:
        jwt.decode(token, secret, algorithms=["HS256"], leeway=LEEWAY_SECONDS,
                   options={"require": list(REQUIRED_CLAIMS)})  # fmt: skip
    except jwt.InvalidSignatureError:
        return failed(MISMATCH, claims)
    except jwt.MissingRequiredClaimError as exc:
        return failed(f"the JWT has no {exc.claim!r} claim", claims)
    except jwt.ImmatureSignatureError:
        return failed("the JWT's iat is in the future", claims)
    except jwt.PyJWTError as exc:
        return failed(f"the Authorization header is not a valid JWT ({exc})", claims)
    if claims.get("iss") != "Vonage":
        return failed(f"the JWT's iss is {claims.get('iss')!r}, not 'Vonage'", claims)
    if claims.get("payload_hash") != body_hash:
        return failed(CHANGED_BODY, claims)
    return SignatureCheck(claims, body_hash, True, True)
