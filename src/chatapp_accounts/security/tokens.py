"""Access tokens encrypted at rest with AES-256-GCM.

Every ciphertext carries the id of the key that made it, and is bound to its row through
the associated data (provider and external_id, which never change): a ciphertext copied
into another row fails to decrypt. Keys come from CHATAPP_ENCRYPTION_KEYS (base64url, 32
bytes each, the first encrypts, all decrypt); for the embedded default a key file is made
beside the database with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import ConfigError, Settings

_VERSION = b"\x01"
_KEY_ID_LEN = 4
_NONCE_LEN = 12
_RECENT_MAX = 10_000


class TokenDecryptError(Exception):
    """A stored token could not be decrypted: wrong key, wrong row, or tampered."""


def new_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError("CHATAPP_ENCRYPTION_KEYS: a key is not valid base64url") from None
    if len(raw) != 32:
        raise ConfigError("CHATAPP_ENCRYPTION_KEYS: each key must be 32 bytes (base64url)")
    return raw


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"chatapp-accounts key id" + key).digest()[:_KEY_ID_LEN]


class TokenCipher:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ConfigError("no encryption key configured")
        self._first = keys[0]
        self._primary = (_key_id(keys[0]), AESGCM(keys[0]))
        self._by_id = {_key_id(k): AESGCM(k) for k in reversed(keys)}
        # ciphertext -> (provider, external_id, plaintext) of the row it was decrypted for
        self._recent: dict[bytes, tuple[str, str, str]] = {}

    @classmethod
    def from_texts(cls, texts: list[str] | tuple[str, ...]) -> TokenCipher:
        return cls([_decode_key(t) for t in texts])

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for another use (`purpose`), derived from the primary key (HKDF):
        the same in every process that has the same keys."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            self._first
        )

    @property
    def primary_key_id(self) -> bytes:
        return self._primary[0]

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        key_id, aead = self._primary
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + key_id + nonce + aead.encrypt(nonce, plaintext.encode("utf-8"), aad)

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        return self._decrypt(blob, aad)

    def decrypt_row(self, blob: bytes, provider: str, external_id: str) -> str:
        """decrypt() of an account row's token (`row_binding` its associated data), once per
        ciphertext and row: a ciphertext is never reused (a fresh nonce each time), so its
        plaintext remembered with the row it was decrypted for can never be stale, and the
        same ciphertext in another row is decrypted, and refused, afresh."""
        hit = self._recent.get(blob)
        if hit is not None and hit[0] == provider and hit[1] == external_id:
            return hit[2]
        plain = self._decrypt(blob, row_binding(provider, external_id))
        if len(self._recent) >= _RECENT_MAX:
            self._recent.clear()
        self._recent[blob] = (provider, external_id, plain)
        return plain

    def _decrypt(self, blob: bytes, aad: bytes) -> str:
        if len(blob) < 1 + _KEY_ID_LEN + _NONCE_LEN + 16 or blob[:1] != _VERSION:
            raise TokenDecryptError("unknown ciphertext format")
        key_id = bytes(blob[1 : 1 + _KEY_ID_LEN])
        aead = self._by_id.get(key_id)
        if aead is None:
            raise TokenDecryptError("ciphertext made with a key that is not configured")
        nonce = bytes(blob[1 + _KEY_ID_LEN : 1 + _KEY_ID_LEN + _NONCE_LEN])
        try:
            return aead.decrypt(nonce, bytes(blob[1 + _KEY_ID_LEN + _NONCE_LEN :]), aad).decode()
        except InvalidTag:
            raise TokenDecryptError(
                "ciphertext does not belong to this row or was altered"
            ) from None

    def key_id_of(self, blob: bytes) -> bytes:
        return bytes(blob[1 : 1 + _KEY_ID_LEN])


def row_binding(provider: str, external_id: str) -> bytes:
    """The associated data that ties a ciphertext to its account row."""
    return (
        b"chatapp-accounts/access_token/v1\x00" + provider.encode() + b"\x00" + external_id.encode()
    )


def signature_binding(api_key: str) -> bytes:
    """The associated data that ties a ciphertext to its tenant's webhook signature secret."""
    return b"chatapp-accounts/signature_secret/v1\x00" + api_key.encode()


def load_cipher(settings: Settings) -> TokenCipher:
    """Keys from the environment; else, for the embedded default, from a 0600 key file."""
    if settings.encryption_keys:
        return TokenCipher.from_texts(settings.encryption_keys)
    key_file = settings.key_file
    if key_file is None:
        raise ConfigError(
            "CHATAPP_ENCRYPTION_KEYS must be set when the database is not an SQLite file "
            "(make a key with: chatapp-accounts secrets new-key)"
        )
    return TokenCipher.from_texts(_read_or_create_key_file(key_file))


def _read_or_create_key_file(path: Path) -> list[str]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(new_key() + "\n")
        try:
            os.link(tmp, path)  # atomic: a process that loses the race reads the winner's key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines() if line.strip()]
    if not keys:
        raise ConfigError(f"the key file {path} is empty")
    return keys
