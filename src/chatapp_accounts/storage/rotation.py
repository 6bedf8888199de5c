"""Re-encrypt every stored access token under the first configured key, while serving.

Each row is rewritten with a compare-and-swap on its old ciphertext, in small transactions, so
a token that a request changes meanwhile is never overwritten with a stale value (that row is
simply already under the new key, since the server encrypts with the first key too). When it
finishes, no ciphertext needs any key but the first, and the others can be removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from ..security.tokens import TokenCipher, row_binding
from .tables import accounts


@dataclass(frozen=True, slots=True)
class RotationReport:
    rotated: int
    already_current: int
    changed_meanwhile: int


def rotate_tokens(engine: Engine, cipher: TokenCipher, *, batch: int = 500) -> RotationReport:
    rotated = current = raced = 0
    last_pk = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    accounts.c.pk,
                    accounts.c.provider,
                    accounts.c.external_id,
                    accounts.c.access_token,
                )
                .where(accounts.c.pk > last_pk, accounts.c.access_token.is_not(None))
                .order_by(accounts.c.pk)
                .limit(batch)
            ).all()
        if not rows:
            return RotationReport(rotated, current, raced)
        last_pk = rows[-1][0]
        with engine.begin() as conn:
            for pk, provider, external_id, blob in rows:
                blob = bytes(blob)
                if cipher.key_id_of(blob) == cipher.primary_key_id:
                    current += 1
                    continue
                aad = row_binding(provider, external_id)
                fresh = cipher.encrypt(cipher.decrypt(blob, aad), aad)
                result = conn.execute(
                    update(accounts)
                    .where(accounts.c.pk == pk, accounts.c.access_token == blob)
                    .values(access_token=fresh)
                )
                if result.rowcount == 1:
                    rotated += 1
                else:
                    raced += 1
