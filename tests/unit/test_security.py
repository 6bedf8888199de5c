"""Secret hashing, the token cipher and key files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatapp_accounts.api.auth import credentials
from chatapp_accounts.config import ConfigError, Settings
from chatapp_accounts.domain.errors import NotAuthenticated
from chatapp_accounts.domain.models import BasicCredentials, BearerCredentials
from chatapp_accounts.security import secrets
from chatapp_accounts.security.keys import generate_rsa_key_pair, public_key_problem
from chatapp_accounts.security.tokens import (
    TokenCipher,
    TokenDecryptError,
    load_cipher,
    new_key,
    row_binding,
)


def test_secret_hash_verifies_only_the_secret() -> None:
    secret = secrets.new_api_secret()
    stored = secrets.hash_secret(secret)
    assert secret not in stored
    assert secrets.verify_secret(secret, stored)
    assert not secrets.verify_secret(secret + "x", stored)
    assert len(secret) == secrets.SECRET_LENGTH and secret.isalnum()
    assert len(secrets.new_api_key()) == 8


@pytest.mark.parametrize("length", [1, 16, 128, 129, 5000])
def test_secret_hash_is_the_same_remembered_or_not(length: int) -> None:
    # Secrets up to 128 characters are memoized, longer ones are hashed every time: the hash
    # is SHA-256 either way, and a second call answers the same.
    secret = ("s" * length)[:length]
    expected = "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert secrets.hash_secret(secret) == expected
    assert secrets.hash_secret(secret) == expected
    assert secrets.verify_secret(secret, expected)


def scope_with(authorization: str, path: str = "/beta/chatapp-accounts") -> dict[str, object]:
    return {"headers": [(b"authorization", authorization.encode("latin-1"))], "path": path}


@pytest.mark.parametrize("secret_length", [16, 300])
def test_basic_credentials_decode_the_same_remembered_or_not(secret_length: int) -> None:
    secret = "x" * secret_length
    header = "Basic " + base64.b64encode(f"key1:{secret}".encode()).decode()
    path = "/beta/chatapp-accounts"  # (whose API's limit the request counts against)
    assert credentials(scope_with(header)) == BasicCredentials("key1", secret, path)
    assert credentials(scope_with(header)) == BasicCredentials("key1", secret, path)  # memo
    broken = "Basic " + base64.b64encode(b"no-colon").decode()
    for _ in range(2):  # a refusal is remembered as a refusal
        with pytest.raises(NotAuthenticated):
            credentials(scope_with(broken))


def test_credentials_are_parsed_once_into_a_value() -> None:
    assert credentials(scope_with("Bearer a.b.c", "/x")) == BearerCredentials("a.b.c", "/x")
    assert credentials(scope_with("bearer  a.b.c ", "/x")) == BearerCredentials("a.b.c", "/x")
    for refused in ("", "Bearer", "Bearer ", "Digest abc", "Basic !!!", "x" * 20000):
        with pytest.raises(NotAuthenticated):
            credentials(scope_with(refused))
    with pytest.raises(NotAuthenticated):  # the Application API takes Basic only
        credentials(scope_with("Bearer a.b.c"), bearer=False)
    with pytest.raises(NotAuthenticated):
        credentials({"headers": [], "path": "/"})


def test_cipher_round_trip_and_row_binding() -> None:
    cipher = TokenCipher.from_texts([new_key()])
    blob = cipher.encrypt("token", row_binding("messenger", "1"))
    assert b"token" not in blob
    assert cipher.decrypt(blob, row_binding("messenger", "1")) == "token"
    with pytest.raises(TokenDecryptError):
        cipher.decrypt(blob, row_binding("messenger", "2"))
    with pytest.raises(TokenDecryptError):
        cipher.decrypt(blob[:-1] + bytes([blob[-1] ^ 1]), row_binding("messenger", "1"))


def test_row_decryption_is_remembered_per_row_only() -> None:
    cipher = TokenCipher.from_texts([new_key()])
    blob = cipher.encrypt("token", row_binding("messenger", "1"))
    for _ in range(2):  # the second time from memory
        assert cipher.decrypt_row(blob, "messenger", "1") == "token"
    # The same ciphertext in another row: decrypted afresh, and refused.
    with pytest.raises(TokenDecryptError):
        cipher.decrypt_row(blob, "messenger", "2")
    with pytest.raises(TokenDecryptError):
        cipher.decrypt_row(blob, "whatsapp", "1")
    assert cipher.decrypt_row(blob, "messenger", "1") == "token"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(TokenDecryptError):
        cipher.decrypt_row(tampered, "messenger", "1")


def test_old_keys_decrypt_first_key_encrypts() -> None:
    old, new = new_key(), new_key()
    blob = TokenCipher.from_texts([old]).encrypt("t", b"aad")
    rotated = TokenCipher.from_texts([new, old])
    assert rotated.decrypt(blob, b"aad") == "t"
    assert rotated.key_id_of(rotated.encrypt("t", b"aad")) == rotated.primary_key_id
    with pytest.raises(TokenDecryptError):
        TokenCipher.from_texts([new]).decrypt(blob, b"aad")


@pytest.mark.parametrize("bad", ["not base64!", "c2hvcnQ"])
def test_bad_keys_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        TokenCipher.from_texts([bad])


def test_embedded_default_makes_a_private_key_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/db.sqlite3")
    cipher = load_cipher(settings)
    key_file = tmp_path / "db.sqlite3.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = load_cipher(settings)  # the same key is read back
    assert again.decrypt(cipher.encrypt("x", b"a"), b"a") == "x"


def test_postgres_needs_configured_keys() -> None:
    with pytest.raises(ConfigError, match="CHATAPP_ENCRYPTION_KEYS"):
        load_cipher(Settings(database_url="postgresql://u@h/db"))


def test_public_key_checks() -> None:
    _, public = generate_rsa_key_pair()
    assert public_key_problem(public) is None
    assert public_key_problem("garbage") == "must be a PEM-encoded public key"


def test_secret_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets, "hmac", SimpleNamespace(compare_digest=spy))
    stored = secrets.hash_secret("s")
    assert secrets.verify_secret("s", stored)
    assert calls == [(stored, stored)]


def test_trace_logging_is_refused() -> None:
    from chatapp_accounts.config import settings_from_env

    with pytest.raises(ConfigError, match="trace"):
        settings_from_env({"CHATAPP_LOG_LEVEL": "trace"})
    assert settings_from_env({"CHATAPP_LOG_LEVEL": "DEBUG"}).log_level == "debug"
