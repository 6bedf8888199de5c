"""The testing kit's signature check: why a webhook does not verify, and no secret shown."""

from __future__ import annotations

import jwt

from chatapp_accounts.security.webhooks import sign_webhook
from chatapp_accounts.testing.receiver import Delivery, Verdict, verify_webhook

SECRET = "signature-secret-0123456789abcdef0123456789"
BODY = b'{"message_uuid":"m","status":"delivered"}'


def signed(body: bytes = BODY, secret: str = SECRET) -> str:
    return sign_webhook(body, secret, api_key="k", application_id="a")


def test_a_webhook_signed_with_the_secret_over_its_body_verifies() -> None:
    verdict = verify_webhook(BODY, signed(), SECRET)
    assert verdict.ok and verdict.checked and verdict.describe() == "signature verified"
    assert verdict.claims["api_key"] == "k" and verdict.claims["iss"] == "Vonage"


def test_each_reason_a_webhook_does_not_verify() -> None:
    other = "another-secret-0123456789abcdef0123456789"
    cases = {
        None: "no Authorization header: the webhook is unsigned",
        "Basic abc": "the Authorization header is not 'Bearer <JWT>'",
        "Bearer not-a-jwt": "the Authorization header is not a valid JWT",
        signed(secret=other): "the JWT's HS256 signature does not match the signature secret",
        signed(b"{}"): "the JWT's payload_hash is not the SHA-256 of the body received",
        "Bearer " + jwt.encode({"iat": 1, "jti": "j", "iss": "Vonage"}, SECRET): "no 'payload_hash'",
        "Bearer " + jwt.encode({"iat": 1, "jti": "j", "iss": "X", "payload_hash": "h"}, SECRET):
            "the JWT's iss is 'X', not 'Vonage'",
    }  # fmt: skip
    for authorization, reason in cases.items():
        verdict = verify_webhook(BODY, authorization, SECRET)
        assert verdict.checked and not verdict.ok
        assert reason in verdict.reason, (authorization, verdict.reason)
        assert SECRET not in verdict.describe()


def test_a_deliverys_repr_masks_its_authorization() -> None:
    token = signed()
    delivery = Delivery("POST", "/status", {"Authorization": token, "X-A": "b"}, BODY,
                        None, 0.0, Verdict(True, True))  # fmt: skip
    shown = repr(delivery)
    assert token[7:] not in shown and "'Authorization': '***'" in shown and "'X-A': 'b'" in shown
    assert delivery.header("authorization") == token
