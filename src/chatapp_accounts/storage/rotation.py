"""Re-encrypt every stored secret under the first configured key, while serving: the access
tokens of accounts and the webhook signature secrets of tenants.

Each row is rewritten with a compare-and-swap on its old ciphertext, in small transactions, so
a secret that a request changes meanwhile is never overwritten with a stale value (that row is
simply already under the new key, since the server encrypts with the first key too). When it
finishes, no ciphertext needs any key but the first, and the others can be removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Table, select, update

from ..security.tokens import TokenCipher, row_binding, signature_binding
from .tables import accounts, tenants


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int
    already_current: int
    changed_meanwhile: int


@dataclass(frozen=True, slots=True)
class _Sealed:
    """A column of ciphertexts: its table's key, and the row values its binding is made of."""

    table: Table
    key: Column[Any]
    blob: Column[Any]
    bound_to: tuple[Column[Any], ...]
    binding: Callable[..., bytes]


_SEALED = (
    _Sealed(
        accounts, accounts.c.pk, accounts.c.access_token,
        (accounts.c.provider, accounts.c.external_id), row_binding,
    ),
    _Sealed(
        tenants, tenants.c.id, tenants.c.signature_secret, (tenants.c.api_key,), signature_binding
    ),
)  # fmt: skip


def rotate_tokens(engine: Engine, cipher: TokenCipher, *, batch: int = 500) -> RotationReport:
    counts = [0, 0, 0]
    for sealed in _SEALED:
        for i, n in enumerate(_rotate(engine, cipher, sealed, batch)):
            counts[i] += n
    return RotationReport(*counts)


def _rotate(engine: Engine, cipher: TokenCipher, sealed: _Sealed, batch: int) -> list[int]:
    rotated = current = raced = 0
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(sealed.key, sealed.blob, *sealed.bound_to)
                .where(sealed.key > last, sealed.blob.is_not(None))
                .order_by(sealed.key)
                .limit(batch)
            ).all()
        if not rows:
            return [rotated, current, raced]
        last = rows[-1][0]
        with engine.begin() as conn:
            for key, blob, *bound in rows:
                blob = bytes(blob)
                if cipher.key_id_of(blob) == cipher.primary_key_id:
                    current += 1
                    continue
                aad = sealed.binding(*bound)
                fresh = cipher.encrypt(cipher.decrypt(blob, aad), aad)
                result = conn.execute(
                    update(sealed.table)
                    .where(sealed.key == key, sealed.blob == blob)
                    .values({sealed.blob.name: fresh})
                )
                if result.rowcount == 1:
                    rotated += 1
                else:
                    raced += 1
