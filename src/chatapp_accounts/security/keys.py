"""RSA key pairs for applications, made as Vonage makes them (2048-bit, PKCS#8 PEM)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_rsa_key_pair() -> tuple[str, str]:
    """Return (private_key_pem, public_key_pem)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem


def public_key_problem(pem: str) -> str | None:
    """Why a public key cannot be used to verify RS256 tokens, or None."""
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return "must be a PEM-encoded public key"
    if not isinstance(key, rsa.RSAPublicKey):
        return "must be an RSA public key"
    if key.key_size < 2048:
        return "must be an RSA key of at least 2048 bits"
    return None
