"""Webhook signatures: what Vonage's own receiver-side check (`vonage_jwt.verify_signature`)
accepts, with the body's hash in the claims."""

from __future__ import annotations

import hashlib

import jwt
import pytest
from vonage_jwt import verify_signature

from chatapp_accounts.security.secrets import new_signature_secret
from chatapp_accounts.security.webhooks import sign_webhook

BODY = b'{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee","status":"delivered"}'


def test_vonage_jwt_accepts_the_signature_and_the_claims_are_vonages() -> None:
    secret = new_signature_secret()
    header = sign_webhook(
        BODY, secret, api_key="abcd1234", application_id="app-1", now=1_700_000_000
    )
    scheme, _, token = header.partition(" ")
    assert scheme == "Bearer"
    assert verify_signature(token, secret) is True
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims == {
        "iat": 1_700_000_000,
        "jti": claims["jti"],
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(BODY).hexdigest(),
        "api_key": "abcd1234",
        "application_id": "app-1",
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_another_secret_is_refused_and_every_token_is_unique() -> None:
    secret = new_signature_secret()
    token = sign_webhook(BODY, secret, api_key="k", application_id="a").removeprefix("Bearer ")
    assert verify_signature(token, new_signature_secret()) is False
    jtis = {
        jwt.decode(sign_webhook(BODY, secret, api_key="k", application_id="a")[7:], secret,
                   algorithms=["HS256"])["jti"]
        for _ in range(50)
    }  # fmt: skip
    assert len(jtis) == 50


@pytest.mark.parametrize("count", [1, 20])
def test_signature_secrets_are_long_and_new_each_time(count: int) -> None:
    made = {new_signature_secret() for _ in range(count)}
    assert len(made) == count
    assert all(len(s) == 32 and s.isalnum() and s.isascii() for s in made)
