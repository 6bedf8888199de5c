"""The use cases' `Security` port (domain/ports.py), made of this package's parts: secrets and
their hashes, RSA key pairs, application JWTs, and the tenants' limits."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable

from ..domain.errors import AccessDenied, NotAuthenticated
from ..domain.models import (
    ApplicationKey,
    BasicCredentials,
    BearerCredentials,
    Credentials,
    SignatureCheck,
)
from . import secrets
from .jwt import AclDenied, JwtVerifier, TokenRejected
from .keys import generate_rsa_key_pair
from .limits import Limiter
from .webhooks import check_signature

log = logging.getLogger("chatapp_accounts.auth")


_KNOWN_MAX = 10_000  # credentials remembered (all forgotten past it)


class SecurityService:
    def __init__(
        self,
        verifier: JwtVerifier | None = None,
        limiter: Limiter | None = None,
        default_limit: Callable[[str], int] | None = None,
    ) -> None:
        """`limiter`: the tenants' limits (security/limits.py); None: limits off (the command
        line, CHATAPP_LIMITS=false), nothing counted, `default_limit` said on a 429."""
        self.verifier = verifier if verifier is not None else JwtVerifier()
        self.limiter = limiter
        self._default_limit = default_limit
        # Credentials admitted before, to their tenant's id (refuse_early): Basic (api_key,
        # api_secret: the very strings api/auth.py keeps decoded, as many), a JWT's tenant by
        # its api_key.
        self._known: dict[tuple[str, str], int] = {}
        self._tenant_ids: dict[str, int] = {}

    def admit(self, tenant_id: int, api: str, credentials: Credentials) -> None:
        if self.limiter is None:
            return
        if isinstance(credentials, BasicCredentials):
            key = (credentials.api_key, credentials.api_secret)
            if key not in self._known:
                if len(self._known) >= _KNOWN_MAX:
                    self._known.clear()
                self._known[key] = tenant_id
        elif isinstance(credentials, BearerCredentials):
            api_key = self.verifier.api_key_of(credentials.token)
            if api_key is not None and api_key not in self._tenant_ids:
                if len(self._tenant_ids) >= _KNOWN_MAX:
                    self._tenant_ids.clear()
                self._tenant_ids[api_key] = tenant_id
        self.limiter.admit(tenant_id, api)

    def refuse_early(self, credentials: Credentials, api: str) -> None:
        """Throttled, with no look at the database, for credentials this process found good
        before (Basic credentials it admitted, a JWT its verifier remembers and that has not
        expired) whose tenant's second on `api` is spent: a tenant past its limit costs the
        others next to nothing (docs/limits.md)."""
        if self.limiter is None:
            return
        tenant_id = None
        if isinstance(credentials, BasicCredentials):
            tenant_id = self._known.get((credentials.api_key, credentials.api_secret))
        elif isinstance(credentials, BearerCredentials):
            api_key = self.verifier.api_key_of(credentials.token, valid_only=True)
            tenant_id = self._tenant_ids.get(api_key) if api_key is not None else None
        if tenant_id is not None:
            self.limiter.refuse_if_spent(tenant_id, api)

    def limit(self, tenant_id: int, api: str) -> int:
        if self.limiter is not None:
            return self.limiter.limit(tenant_id, api)
        return self._default_limit(api) if self._default_limit is not None else 0

    @property
    def dummy_hash(self) -> str:
        return secrets.DUMMY_HASH

    def new_api_key(self) -> str:
        return secrets.new_api_key()

    def new_api_secret(self) -> str:
        return secrets.new_api_secret()

    def new_signature_secret(self) -> str:
        return secrets.new_signature_secret()

    def hash_secret(self, secret: str) -> str:
        return secrets.hash_secret(secret)

    def verify_secret(self, secret: str, stored_hash: str) -> bool:
        return secrets.verify_secret(secret, stored_hash)

    def check_signature(
        self, authorization: str | None, body: bytes, secret: str | None
    ) -> SignatureCheck:
        return check_signature(authorization, body, secret)

    def session_binding(self, secret_hash: str) -> str:
        return secrets.session_binding(secret_hash)

    def verify_session(self, binding: str, secret_hash: str) -> bool:
        return hmac.compare_digest(binding, secrets.session_binding(secret_hash))

    async def new_key_pair(self) -> tuple[str, str]:
        return await asyncio.to_thread(generate_rsa_key_pair)

    def new_admin_token(self) -> str:
        return secrets.new_admin_token()

    def hash_token(self, token: str) -> str:
        return secrets.hash_token(token)

    def claimed_application(self, token: str) -> str | None:
        return self.verifier.claimed_application(token)

    def verify_token(self, token: str, path: str, key: ApplicationKey | None) -> ApplicationKey:
        try:
            return self.verifier.verify(token, path, key)
        except TokenRejected as exc:
            log.info("bearer token rejected: %s", exc)  # the reason, never the token
            raise NotAuthenticated() from None
        except AclDenied:
            raise AccessDenied() from None
