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


def check_signature(authorization: str | None, body: bytes, secret: str | None) -> SignatureCheck:
    """What a receiver finds checking a webhook as Vonage's documentation says: the Bearer
    token verifies as HS256 with the signature secret, and its `payload_hash` is the SHA-256 of
    the body received. The claims are read even when it does not verify, to show why."""
    body_hash = payload_hash(body)

    def failed(reason: str, claims: dict[str, Any] | None = None) -> SignatureCheck:
        claims = claims or {}
        matches = claims.get("payload_hash") == body_hash
        return SignatureCheck(claims, body_hash, matches, False, reason)

    if not authorization:
        return failed("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return failed("the Authorization header is not a Bearer token")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return failed(f"not a JWT: {exc}")
    if header.get("alg") != "HS256":
        return failed(f"signed with {header.get('alg')!r}, not HS256", claims)
    if secret is None:
        return failed("the tenant has no signature secret", claims)
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_iat": False})
    except jwt.InvalidSignatureError:
        return failed("the signature does not verify with the tenant's current secret", claims)
    except jwt.PyJWTError as exc:
        return failed(f"the token does not verify: {exc}", claims)
    if claims.get("payload_hash") != body_hash:
        return failed("payload_hash is not the SHA-256 of the body", claims)
    return SignatureCheck(claims, body_hash, True, True)
