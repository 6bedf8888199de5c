"""Tokens for tests: good ones from Vonage's own SDK (vonage-jwt), bad ones made by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from vonage_jwt import JwtClient


def sdk_token(application_id: str, private_key: str, **claims: Any) -> str:
    """Exactly what Vonage's SDK sends (it sets iat, jti and exp = iat + 15 min)."""
    token: bytes = JwtClient(application_id, private_key).generate_application_jwt(claims)
    return token.decode()


def signed(private_key: str, claims: dict[str, Any], alg: str = "RS256") -> str:
    return jwt.encode(claims, private_key, algorithm=alg)


def claims(application_id: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"application_id": application_id, "iat": now, "jti": str(uuid.uuid4())}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(public_key: str, body: dict[str, Any]) -> str:
    """The classic key-confusion attack: HMAC keyed with the RSA public key's PEM."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(body).encode())
    mac = hmac.new(public_key.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{_b64(mac)}"


def alg_none(body: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(body).encode())}."
