"""What proves a provider's callback came from the provider (issue 22), as Meta and Google
document it:

- Meta (Messenger, WhatsApp): `X-Hub-Signature-256: sha256=<lowercase hex HMAC-SHA256 of the
  raw body bytes, keyed with the deployment's app secret>`. Checked on the bytes as received:
  Meta signs its escaped-unicode form (`\\u00e4`), which re-serialised JSON would not reproduce.
  The subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`)
  is answered with the challenge when the verify token matches.
- Google RBM: `X-Goog-Signature: <base64 HMAC-SHA512 of the base64-decoded message.data, keyed
  with the client token>`.

Every comparison is constant-time, and every function answers False (or None) for anything
malformed: a missing header, another scheme, bad hex or base64. Nothing here raises on input."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_META_SCHEME = "sha256="


def meta_signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether `X-Hub-Signature-256` is Meta's signature of these exact bytes."""
    if not header or not app_secret or not header.startswith(_META_SCHEME):
        return False
    given = header[len(_META_SCHEME) :].strip().lower()
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode())


def meta_handshake(
    mode: str | None, verify_token: str | None, challenge: str | None, expected_token: str
) -> str | None:
    """The body to answer a subscription handshake with (its challenge), or None: refuse."""
    if mode != "subscribe" or challenge is None or verify_token is None or not expected_token:
        return None
    if not hmac.compare_digest(verify_token.encode(), expected_token.encode()):
        return None
    return challenge


def rbm_signature_valid(data: str, header: str | None, client_token: str) -> bool:
    """Whether `X-Goog-Signature` is RBM's signature of an event's `message.data` (the base64
    text as received)."""
    if not header or not client_token:
        return False
    try:
        payload = base64.b64decode(data, validate=True)
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(client_token.encode(), payload, hashlib.sha512).digest()
    return hmac.compare_digest(given, expected)


def rbm_setup_secret(
    client_token: str | None, secret: str | None, expected_token: str
) -> str | None:
    """The body to answer RBM's endpoint set-up request with (its `secret`), or None: refuse
    (403, nothing echoed)."""
    if client_token is None or secret is None or not expected_token:
        return None
    if not hmac.compare_digest(client_token.encode(), expected_token.encode()):
        return None
    return secret
