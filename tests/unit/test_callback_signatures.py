"""Provider callback signatures (security/callbacks.py). The fixed vectors were computed with
`openssl dgst` (not with this code): Meta's over a body holding escaped unicode, as Meta sends
it; RBM's over the decoded `message.data`."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from chatapp_accounts.security.callbacks import (
    meta_handshake,
    meta_signature_valid,
    rbm_setup_secret,
    rbm_signature_valid,
)

META_BODY = (
    b'{"object":"page","entry":[{"id":"1","messaging":[{"message":'
    b'{"text":"\\u00e4\\u00f6\\u00e5"}}]}]}'
)
# openssl dgst -sha256 -hmac app-secret-1 body
META_SIGNATURE = "sha256=49a79f16716bb39578ab0b805af260999066f8a3f3e66a408b8b1ed9007242e0"
RBM_DATA = "eyJldmVudFR5cGUiOiJERUxJVkVSRUQiLCJtZXNzYWdlSWQiOiJtLTEifQ=="
# openssl dgst -sha512 -hmac client-token-1 -binary decoded-data | base64
RBM_SIGNATURE = (
    "mv+7kxhovE9KldAvtvEsdiCj5wSf6wGN96aqfKFhi8MmLGdwPofWkpBeLh9xfV7QW0WRMcuaJioS9xpukMFgqw=="
)


def test_meta_signature_of_the_raw_bytes() -> None:
    assert meta_signature_valid(META_BODY, META_SIGNATURE, "app-secret-1")
    assert meta_signature_valid(META_BODY, META_SIGNATURE.upper().replace("SHA256=", "sha256="),
                                "app-secret-1")  # fmt: skip
    # The same JSON re-serialised with the characters themselves is not what Meta signed.
    reserialised = META_BODY.replace(b"\\u00e4\\u00f6\\u00e5", "äöå".encode())
    assert not meta_signature_valid(reserialised, META_SIGNATURE, "app-secret-1")
    assert not meta_signature_valid(META_BODY, META_SIGNATURE, "another-secret")
    assert not meta_signature_valid(META_BODY + b" ", META_SIGNATURE, "app-secret-1")


def test_meta_signature_refuses_what_is_not_one() -> None:
    digest = META_SIGNATURE.removeprefix("sha256=")
    for header in (None, "", digest, "sha1=" + digest, "sha256=", "sha256=zz" + digest[2:],
                   "sha256=é" + digest[1:]):  # fmt: skip
        assert not meta_signature_valid(META_BODY, header, "app-secret-1"), header
    assert not meta_signature_valid(META_BODY, META_SIGNATURE, "")  # no secret set: nothing passes


@given(st.binary(max_size=200), st.text(max_size=80))
def test_meta_signature_never_raises(body: bytes, header: str) -> None:
    assert meta_signature_valid(body, header, "app-secret-1") in (True, False)


def test_meta_handshake() -> None:
    assert meta_handshake("subscribe", "verify-1", "1158201444", "verify-1") == "1158201444"
    assert meta_handshake("subscribe", "wrong", "1158201444", "verify-1") is None
    assert meta_handshake("unsubscribe", "verify-1", "1158201444", "verify-1") is None
    assert meta_handshake("subscribe", None, "1158201444", "verify-1") is None
    assert meta_handshake("subscribe", "verify-1", None, "verify-1") is None
    assert meta_handshake("subscribe", "", "c", "") is None  # no verify token set: refused


def test_rbm_signature_over_the_decoded_data() -> None:
    assert rbm_signature_valid(RBM_DATA, RBM_SIGNATURE, "client-token-1")
    assert not rbm_signature_valid(RBM_DATA, RBM_SIGNATURE, "client-token-2")
    other = base64.b64encode(b'{"eventType":"READ","messageId":"m-1"}').decode()
    assert not rbm_signature_valid(other, RBM_SIGNATURE, "client-token-1")
    for header in (None, "", "not base64!", RBM_SIGNATURE[:-4]):
        assert not rbm_signature_valid(RBM_DATA, header, "client-token-1"), header
    assert not rbm_signature_valid("%%%", RBM_SIGNATURE, "client-token-1")
    assert not rbm_signature_valid(RBM_DATA, RBM_SIGNATURE, "")


@given(st.text(max_size=80), st.text(max_size=120))
def test_rbm_signature_never_raises(data: str, header: str) -> None:
    assert rbm_signature_valid(data, header, "client-token-1") in (True, False)


def test_rbm_setup_answers_its_secret_only_to_the_right_client_token() -> None:
    assert rbm_setup_secret("client-token-1", "s3cret", "client-token-1") == "s3cret"
    assert rbm_setup_secret("wrong", "s3cret", "client-token-1") is None
    assert rbm_setup_secret(None, "s3cret", "client-token-1") is None
    assert rbm_setup_secret("client-token-1", None, "client-token-1") is None
