"""What the `chatapp` fixture gives a test: tenants, applications and linked accounts made on
the plugin's server, and the simulated customer (docs/messages.md's sandbox API).

Tenants and operator-only accounts are made in-process by the same use cases as the command
line (`tenants create`, `accounts provision`); applications, Messenger pages, links and the
customer's messages go over HTTP, through the APIs a user's code calls. Only the standard
library speaks HTTP here: the plugin needs nothing the package does not already install.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from ..domain import accounts as account_cases
from ..domain import tenants as tenant_cases
from ..domain.models import CHANNEL_PROVIDERS, Provider
from ..security.service import SecurityService
from .server import ChatappServer

EA = "/beta/chatapp-accounts"
# A customer each channel's `to` schema takes (inbound `from`).
CUSTOMERS = {"messenger": "user-1", "whatsapp": "447700900123", "viber_service": "447700900123",
             "rcs": "447700900123"}  # fmt: skip
CHANNELS = {provider.value: channel for channel, provider in CHANNEL_PROVIDERS.items()}


class ChatappError(Exception):
    """An API answered with an error: its status and body (never the request's credentials)."""

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {url} answered {status}: {json.dumps(body)[:2000]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Tenant:
    """A tenant's credentials: `api_key`, `api_secret` (Basic), `signature_secret` (its
    webhooks are signed with it). Its repr shows only the api_key."""

    api_key: str
    api_secret: str = field(repr=False)
    signature_secret: str = field(repr=False)

    @property
    def auth(self) -> tuple[str, str]:
        """(api_key, api_secret): `auth=` of requests and httpx."""
        return self.api_key, self.api_secret

    @property
    def authorization(self) -> str:
        """The value of a Basic `Authorization` header."""
        raw = f"{self.api_key}:{self.api_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Application:
    """An application made through the Application API v2: `id`, its `tenant`, the
    `private_key` (PEM) the server made for it, `data` (the API's answer, without the key)."""

    id: str
    tenant: Tenant
    private_key: str = field(repr=False)
    data: dict[str, Any] = field(repr=False, default_factory=dict)

    def jwt(self, ttl: int = 900, **claims: Any) -> str:
        """An RS256 application JWT as Vonage's SDKs make it (application_id, iat, jti, exp):
        `Authorization: Bearer <this>`. `claims` adds to them or replaces them (acl, ...)."""
        now = int(time.time())
        body = {"application_id": self.id, "iat": now, "jti": str(uuid.uuid4()), "exp": now + ttl}
        body.update(claims)
        return jwt.encode(body, self.private_key, algorithm="RS256")


@dataclass(frozen=True)
class Account:
    """A linked (or not) account: `channel` (the Messages API's name: messenger, whatsapp,
    viber_service, rcs), `provider` (the External Accounts API's), `external_id` (the `from`
    of what it sends), its `tenant` and `application` (None: not linked)."""

    channel: str
    provider: str
    external_id: str
    tenant: Tenant
    application: Application | None = None

    @property
    def application_id(self) -> str | None:
        return self.application.id if self.application is not None else None


class Chatapp:
    """Factories and the simulated customer, on `server` (see docs/testing-kit.md)."""

    def __init__(self, server: ChatappServer) -> None:
        self.server = server
        self.tenants: list[Tenant] = []

    # -- HTTP --

    def request(
        self,
        method: str,
        path: str,
        *,
        tenant: Tenant | None = None,
        json_body: Any = None,
        query: dict[str, Any] | None = None,
        authorization: str | None = None,
    ) -> tuple[int, Any]:
        """`method path` on the server's plain HTTP listener, as `tenant` (Basic) or with
        `authorization`; (status, parsed JSON body or None). Never raises for a status."""
        url = self.server.base_url + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        if tenant is not None:
            headers["Authorization"] = tenant.authorization
        if authorization is not None:
            headers["Authorization"] = authorization
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:  # noqa: S310 - our http URL
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _expect(self, method: str, path: str, expected: int, **options: Any) -> Any:
        status, body = self.request(method, path, **options)
        if status != expected:
            raise ChatappError(method, path, status, body)
        return body

    # -- factories --

    def tenant(self) -> Tenant:
        """A new tenant (as `chatapp-accounts tenants create`): a fresh one per test keeps
        tests apart. Webhook receivers check its webhooks with its signature secret."""
        made = self.server.call(lambda uow: tenant_cases.create_tenant(uow, SecurityService()))
        tenant = Tenant(made.api_key, made.api_secret, made.signature_secret)
        self.server.signature_secrets[tenant.api_key] = tenant.signature_secret
        self.tenants.append(tenant)
        return tenant

    def application(
        self,
        tenant: Tenant | None = None,
        webhook_url: str | None = None,
        *,
        inbound_url: str | None = None,
        status_url: str | None = None,
        name: str = "chatapp test application",
    ) -> Application:
        """An application with the `messages` capability, made with `POST /v2/applications`
        (a new tenant if none is given). Its webhooks: `inbound_url` and `status_url`, by
        default `webhook_url + "/inbound"` and `webhook_url + "/status"` (none: no webhooks)."""
        tenant = tenant or self.tenant()
        if webhook_url is not None:
            base = webhook_url.rstrip("/")
            inbound_url = inbound_url or base + "/inbound"
            status_url = status_url or base + "/status"
        hooks = {
            key: {"address": address, "http_method": "POST"}
            for key, address in (("inbound_url", inbound_url), ("status_url", status_url))
            if address is not None
        }
        body = {"name": name, "capabilities": {"messages": {"webhooks": hooks}}}
        made = self._expect("POST", "/v2/applications", 201, tenant=tenant, json_body=body)
        keys = dict(made.get("keys") or {})
        private_key = keys.pop("private_key")
        return Application(str(made["id"]), tenant, private_key, {**made, "keys": keys})

    def account(
        self,
        tenant: Tenant | None = None,
        channel: str = "whatsapp",
        *,
        application: Application | None = None,
        external_id: str | None = None,
        name: str | None = None,
    ) -> Account:
        """An account of `channel` (messenger, whatsapp, viber_service or rcs; the provider
        names viber_service_msg too) for `tenant` (the application's, or a new one), linked to
        `application` when given. Messenger pages are made with the External Accounts API;
        the others, operator-only, as `chatapp-accounts accounts provision` makes them."""
        channel = CHANNELS.get(channel, channel)
        if channel not in CHANNEL_PROVIDERS:
            raise ValueError(f"no channel {channel!r}: one of {', '.join(CHANNEL_PROVIDERS)}")
        provider = CHANNEL_PROVIDERS[channel]
        if tenant is None:
            tenant = application.tenant if application is not None else self.tenant()
        external_id = external_id or _new_external_id(channel)
        if provider is Provider.MESSENGER:
            token = "page-token-" + secrets.token_hex(8)
            page: dict[str, Any] = {"external_id": external_id, "access_token": token}
            if name is not None:
                page["name"] = name
            self._expect("POST", f"{EA}/messenger", 201, tenant=tenant, json_body=page)
        else:
            api_key = tenant.api_key
            self.server.call(
                lambda uow: account_cases.provision_account(
                    uow, api_key=api_key, provider=provider, external_id=external_id, name=name
                )
            )
        account = Account(channel, provider.value, external_id, tenant)
        return self.link(account, application) if application is not None else account

    def link(self, account: Account, application: Application) -> Account:
        """`account` linked to `application` (POST .../{provider}/{external_id}/applications)."""
        path = f"{EA}/{account.provider}/{quote(account.external_id, safe='')}/applications"
        self._expect("POST", path, 200, tenant=account.tenant,
                     json_body={"application": application.id})  # fmt: skip
        return Account(account.channel, account.provider, account.external_id, account.tenant,
                       application)  # fmt: skip

    # -- the simulated customer --

    def inbound(
        self,
        account: Account,
        text: str | None = "Hello",
        *,
        from_: str | None = None,
        message_type: str = "text",
        context: str | None = None,
        **content: Any,
    ) -> str:
        """A customer (`from_`, a plausible one by default) sends `account` a message
        (`POST /sandbox/v1/inbound`); its message_uuid. Its webhook goes to the account's
        application's inbound_url. `content`: the message's other fields (image=...,
        profile=...)."""
        body: dict[str, Any] = {"channel": account.channel, "to": account.external_id,
                                "from": from_ or CUSTOMERS[account.channel],
                                "message_type": message_type, **content}  # fmt: skip
        if message_type == "text" and text is not None:
            body["text"] = text
        if context is not None:
            body["context"] = context
        made = self._expect("POST", "/sandbox/v1/inbound", 202, tenant=account.tenant,
                            json_body=body)  # fmt: skip
        return str(made["message_uuid"])

    def read(self, message_uuid: str, tenant: Tenant | None = None) -> None:
        """The customer reads a delivered message (`POST /sandbox/v1/messages/{uuid}/read`):
        a `read` status webhook follows. The message's tenant, or each tenant of this test."""
        path = f"/sandbox/v1/messages/{quote(message_uuid, safe='')}/read"
        for candidate in self._tenants(tenant):
            status, body = self.request("POST", path, tenant=candidate)
            if status == 202:
                return
            if status != 404:
                raise ChatappError("POST", path, status, body)
        raise ChatappError("POST", path, 404, {"detail": "no tenant of this test has it"})

    def message(self, message_uuid: str, tenant: Tenant | None = None) -> dict[str, Any] | None:
        """The message as `GET /sandbox/v1/messages` lists it (statuses, webhooks, attempts),
        or None."""
        for candidate in self._tenants(tenant):
            for message in self.messages(candidate):
                if message["message_uuid"] == message_uuid:
                    return message
        return None

    def messages(self, tenant: Tenant, **filters: Any) -> list[dict[str, Any]]:
        """Every message of `tenant`, newest first (filters: account, direction, status)."""
        found: list[dict[str, Any]] = []
        number = 1
        while True:
            query = {**filters, "page_size": 100, "page_number": number}
            page = self._expect("GET", "/sandbox/v1/messages", 200, tenant=tenant, query=query)
            found.extend(page["_embedded"]["messages"])
            if number >= page["total_pages"]:
                return found
            number += 1

    def wait_for_status(
        self, message_uuid: str, status: str, *, tenant: Tenant | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:  # fmt: skip
        """The message once `status` is among its statuses (polled through the sandbox
        listing); an AssertionError naming the statuses it has after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(message_uuid, tenant)
            statuses = [s["status"] for s in (message or {}).get("statuses", [])]
            if message is not None and status in statuses:
                return message
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"message {message_uuid} did not reach {status!r} within {timeout} s: "
                    + (f"its statuses are {statuses}" if message else "no such message")
                )
            time.sleep(0.05)

    async def inbound_async(self, account: Account, text: str | None = "Hello",
                            **options: Any) -> str:  # fmt: skip
        return await asyncio.to_thread(self.inbound, account, text, **options)

    async def read_async(self, message_uuid: str, tenant: Tenant | None = None) -> None:
        await asyncio.to_thread(self.read, message_uuid, tenant)

    async def wait_for_status_async(self, message_uuid: str, status: str,
                                    **options: Any) -> dict[str, Any]:  # fmt: skip
        return await asyncio.to_thread(self.wait_for_status, message_uuid, status, **options)

    def _tenants(self, tenant: Tenant | None) -> list[Tenant]:
        if tenant is not None:
            return [tenant]
        if not self.tenants:
            raise ValueError("no tenant made by chatapp.tenant() in this test: pass tenant=")
        return list(self.tenants)


def _new_external_id(channel: str) -> str:
    """An external_id no other account of the session has (they are unique per provider)."""
    if channel == "whatsapp":
        return "447" + f"{secrets.randbelow(10**9):09d}"
    return f"{channel.replace('_', '-')}-{secrets.token_hex(6)}"
