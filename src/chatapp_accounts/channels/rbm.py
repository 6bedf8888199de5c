"""RCS through Google's RCS Business Messaging (docs/providers.md).

The deployment's service account sends for every agent: its key (`CHATAPP_RBM_SERVICE_ACCOUNT_FILE`)
signs an RS256 JWT assertion (PyJWT) that the token endpoint (`CHATAPP_RBM_TOKEN_URL`, also the
assertion's `aud`) exchanges for an access token (OAuth's jwt-bearer grant, scope
rcsbusinessmessaging). The token is kept until a minute before it expires, refreshed by one
call however many sends need it at once, and dropped when RBM answers 401.

A send is `POST {CHATAPP_RBM_URL}/v1/phones/{+number}/agentMessages?messageId={uuid}&agentId=`
with the account's agent id: the message id is our message uuid, so a try made again after a
lost answer is the same message (RBM answers 409 ALREADY_EXISTS: taken). A revoke is the
DELETE of that message."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt

from ..domain.models import MessageRecord, StatusChange
from ..domain.providers import Refusal, SenderCredentials, SendTry, Taken
from .http import ProviderClient, Unreachable
from .meta_wire import json_body
from .rbm_wire import rbm_path, rbm_refusal, rbm_request, rbm_revoke_path, rbm_succeeded

SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
EARLY = 60.0  # seconds before its expiry a token is replaced


class TokenUnavailable(Exception):
    """The token endpoint did not give a token (the reason is safe to show)."""


class RbmTokens:
    """Access tokens for the service account, cached until shortly before they expire."""

    def __init__(self, client: ProviderClient, token_url: str, account: dict[str, str],
                 on_refresh: Any = None) -> None:  # fmt: skip
        self._client = client
        self._url = token_url
        self._email = account["client_email"]
        self._key = account["private_key"]
        self._key_id = account.get("private_key_id")
        self._token: str | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()
        self._on_refresh = on_refresh

    def assertion(self, now: float) -> str:
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._url,
                  "iat": int(now), "exp": int(now) + 3600}  # fmt: skip
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    async def get(self) -> str:
        if self._token is not None and time.time() < self._until:
            return self._token
        async with self._lock:  # one refresh for every send waiting on it
            if self._token is not None and time.time() < self._until:
                return self._token
            now = time.time()
            try:
                form = {"grant_type": GRANT, "assertion": self.assertion(now)}
            except jwt.PyJWTError as exc:  # (the key was checked at start: not expected)
                raise TokenUnavailable(
                    f"cannot sign the assertion ({type(exc).__name__})"
                ) from None
            try:
                answer = await self._client.call("POST", self._url, form=form)
            except Unreachable as exc:
                raise TokenUnavailable(f"token endpoint unreachable: {exc}") from None
            data = json_body(answer.body) if answer.status == 200 else None
            token = data.get("access_token") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise TokenUnavailable(f"token endpoint answered HTTP {answer.status}")
            expires = data.get("expires_in") if isinstance(data, dict) else None
            lifetime = float(expires) if isinstance(expires, int | float) else 3600.0
            self._token, self._until = token, now + max(0.0, lifetime - EARLY)
            if self._on_refresh is not None:
                self._on_refresh()
            return token

    def drop(self, token: str) -> None:
        """RBM said this token is no good (401): the next send gets a new one."""
        if self._token == token:
            self._token, self._until = None, 0.0


class RbmChannel:
    live: bool = True

    def __init__(self, client: ProviderClient, tokens: RbmTokens, base_url: str,
                 rate: float) -> None:  # fmt: skip
        self._client = client
        self._tokens = tokens
        self._base = base_url
        self.rate: float | None = rate

    async def _call(
        self, method: str, path: str, body: Any = None
    ) -> tuple[int, bytes, str | None] | Refusal:
        try:
            token = await self._tokens.get()
        except TokenUnavailable as exc:
            return Refusal(retry=True, code="1331", detail=f"RBM {exc}")
        try:
            answer = await self._client.call(method, self._base + path, token=token, json=body)
        except Unreachable as exc:
            return Refusal(retry=True, code="1331", detail=f"RBM unreachable: {exc}")
        if answer.status == 401:
            self._tokens.drop(token)
        return answer.status, answer.body, answer.retry_after

    async def submit(self, send: SendTry) -> Taken | Refusal:
        job = send.job
        message = job.message
        try:
            body = rbm_request(message)
        except ValueError as exc:
            return Refusal(retry=False, code="1020", detail=f"Not sendable on RBM: {exc}")
        got = await self._call("POST", rbm_path(message, job.message_uuid, message.sender), body)
        if isinstance(got, Refusal):
            return got
        status, answer, retry_after = got
        if rbm_succeeded(status, answer):
            return Taken([StatusChange("submitted", time.time())], job.message_uuid)
        return rbm_refusal(status, answer, retry_after)

    async def revoke(self, message: MessageRecord, credentials: SenderCredentials | None,
                     ) -> Refusal | None:  # fmt: skip
        got = await self._call("DELETE", rbm_revoke_path(message.to, message.uuid, message.sender))
        if isinstance(got, Refusal):
            return got
        status, answer, retry_after = got
        if 200 <= status < 300:
            return None
        return rbm_refusal(status, answer, retry_after)

    async def mark_read(self, message: MessageRecord, provider_id: str,
                        credentials: SenderCredentials | None) -> Refusal | None:  # fmt: skip
        return None  # RBM has no read receipts from agents

    async def close(self) -> None:
        await self._client.close()
