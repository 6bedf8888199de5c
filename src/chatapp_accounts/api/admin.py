"""Routes of the admin API, this project's own (docs/operations.md): operators manage tenants
and their accounts and read the audit log over HTTP, with an admin token (`chatapp-accounts
admin-tokens create`) as a Bearer credential. Tenant credentials (Basic, an application's JWT)
are no admin tokens: 401 here. Every change is written to the audit log with the token's name
and the request's id. The command line calls the same use cases (domain/admin.py,
domain/tenants.py, domain/accounts.py); a tenant's accounts are changed with the External
Accounts API's use cases, the operator acting for the tenant (OperatorCredentials). No answer
holds an account's credential."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain import accounts, admin, retention, tenants, webhooks
from ..domain.admin import ACCOUNTS_WRITE, READ, TENANTS_WRITE
from ..domain.errors import InvalidInput, NotAuthenticated
from ..domain.models import (
    Actor,
    AuditEntry,
    OperatorCredentials,
    Provider,
    TenantLimits,
    TenantRecord,
)
from ..presenters import limits_json, webhook_json
from . import bodies
from .accounts import operator_account_json
from .http import Services, header, json_input, json_response, no_content, query, route
from .openapi import served_admin_spec_bytes
from .request_id import request_id

PREFIX = "/admin/v1"
log = logging.getLogger("chatapp_accounts.admin")
T = TypeVar("T")
_AUDIT_PARAMS = {"actor", "tenant", "since", "until", "limit"}
_OUTBOX_FILTERS = {"tenant", "since", "until"}


def _params(scope: Any, allowed: set[str], limit: str | None = None) -> dict[str, Any]:
    """The query's parameters, all of them among `allowed` (400 naming the first that is not),
    `limit` (its default given) as a number: the use case checks its bounds."""
    params: dict[str, Any] = query(scope)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInput.one(unknown[0], "not a parameter of this request")
    if limit is not None:
        given = params.get("limit", limit)
        if not given.isdigit() or len(given) > 6:
            raise InvalidInput.one("limit", f"1 to {admin.AUDIT_LIMIT_MAX}")
        params["limit"] = int(given)
    return params


def bearer_token(scope: Any) -> str:
    """The request's Bearer token: NotAuthenticated (401) for none, another scheme (Basic: a
    tenant's credentials) or a malformed header."""
    value = header(scope, b"authorization") or ""
    scheme, _, rest = value.partition(" ")
    token = rest.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise NotAuthenticated()
    return token


def tenant_json(record: TenantRecord) -> dict[str, Any]:
    return {"api_key": record.api_key, "suspended": record.revoked, "created_at": record.created_at}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": admin.iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "tenant": entry.tenant,
        "request_id": entry.request_id,
        "outcome": entry.outcome,
    }


def admin_routes(services: Services) -> list[Route]:
    uow, security = services.uow_factory, services.security
    limit = services.settings.max_body_bytes

    async def actor(request: Request, scope_needed: str) -> Actor:
        token = await admin.authorize(uow, security, bearer_token(request.scope), scope_needed)
        request.scope["tenant_api_key"] = f"admin:{token.name}"  # the access log's caller
        return Actor(token.name, request_id(request))

    async def change(
        request: Request,
        action: str,
        operation: Callable[[], Awaitable[T]],
        tenant: str | None = None,
        tenant_of: Callable[[T], str | None] | None = None,
        scope: str = TENANTS_WRITE,
        detail_of: Callable[[T], str] | None = None,
    ) -> T:
        who = await actor(request, scope)
        return await admin.audited(uow, who, action, tenant, operation, tenant_of, detail_of)

    def api_key(request: Request) -> str:
        return str(request.scope["path_params"]["api_key"])

    async def create(request: Request) -> Response:
        new = await change(
            request,
            "tenants.create",
            lambda: tenants.create_tenant(uow, security),
            tenant_of=lambda t: t.api_key,
        )
        body = {
            "api_key": new.api_key,
            "api_secret": new.api_secret,
            "signature_secret": new.signature_secret,
        }
        return json_response(body, 201)

    async def list_all(request: Request) -> Response:
        await actor(request, READ)
        records = await tenants.list_tenants(uow)
        return json_response({"tenants": [tenant_json(r) for r in records]})

    async def show(request: Request) -> Response:
        await actor(request, READ)
        return json_response(tenant_json(await tenants.show_tenant(uow, api_key(request))))

    async def delete(request: Request) -> Response:
        key = api_key(request)
        dropped = await change(
            request, "tenants.delete", lambda: tenants.delete_tenant(uow, key), key
        )
        log.warning("tenant %s deleted: dropped %d queued send jobs and %d pending webhooks",
                 key, dropped.send_jobs, dropped.webhooks)  # fmt: skip
        services.on_dropped("send_job", dropped.send_jobs)
        services.on_dropped("webhook", dropped.webhooks)
        return no_content()

    async def suspend(request: Request) -> Response:
        key = api_key(request)
        await change(request, "tenants.suspend", lambda: tenants.suspend_tenant(uow, key), key)
        return json_response(tenant_json(await tenants.show_tenant(uow, key)))

    async def resume(request: Request) -> Response:
        key = api_key(request)
        await change(request, "tenants.resume", lambda: tenants.resume_tenant(uow, key), key)
        return json_response(tenant_json(await tenants.show_tenant(uow, key)))

    async def signature_secret(request: Request) -> Response:
        key = api_key(request)
        secret = await change(
            request,
            "tenants.signature-secret",
            lambda: tenants.replace_signature_secret(uow, security, key),
            key,
        )
        return json_response({"api_key": key, "signature_secret": secret})

    async def redact(request: Request) -> Response:
        key = api_key(request)
        uuid = str(request.scope["path_params"]["message_uuid"])
        await change(request, "messages.redact",
                     lambda: retention.operator_redact(uow, key, uuid), key)  # fmt: skip
        return no_content()

    settings = services.settings

    def shown(key: str, limits: TenantLimits) -> Response:
        defaults = (settings.limit_requests_per_second, settings.limit_messages_per_second)
        return json_response(limits_json(key, limits, *defaults))

    async def get_limits(request: Request) -> Response:
        await actor(request, READ)
        key = api_key(request)
        return shown(key, await tenants.show_limits(uow, key))

    async def put_limits(request: Request) -> Response:
        key = api_key(request)
        parse = await json_input(request, settings.max_body_bytes, bodies.limits_body)
        new = await change(request, "tenants.limits",
                           lambda: tenants.set_limits(uow, key, parse()), key)  # fmt: skip
        return shown(key, new)

    async def audit(request: Request) -> Response:
        await actor(request, READ)
        params = _params(request.scope, _AUDIT_PARAMS, str(admin.AUDIT_LIMIT_MAX))
        entries = await admin.audit_log(uow, **params)
        return json_response({"entries": [audit_json(e) for e in entries]})

    async def outbox(request: Request) -> Response:
        await actor(request, READ)
        allowed = {"state", "limit", *_OUTBOX_FILTERS}
        params = _params(request.scope, allowed, str(webhooks.LIST_DEFAULT))
        found = await webhooks.list_webhooks(uow, **params)
        listed = [{**webhook_json(h), "api_key": h.api_key} for h in found]
        return json_response({"webhooks": listed})

    async def redeliver(request: Request) -> Response:
        webhook_id = str(request.scope["path_params"]["webhook_id"])
        await change(request, "webhooks.redeliver",
                     lambda: webhooks.redeliver_webhook(uow, webhook_id),
                     tenant_of=lambda owner: owner)  # fmt: skip
        return json_response({"id": webhook_id, "state": "pending"})

    # A tenant's accounts: the operator acts for the tenant of the path (OperatorCredentials)
    # through the use cases the CLI and the External Accounts API call.

    def account_path(request: Request) -> tuple[OperatorCredentials, Provider | None, str]:
        params = request.scope["path_params"]
        return (OperatorCredentials(api_key(request)), Provider.parse(params["provider"]),
                str(params["external_id"]))  # fmt: skip

    async def account_change(
        request: Request, action: str, operation: Callable[[], Awaitable[T]]
    ) -> T:
        return await change(request, action, operation, api_key(request), scope=ACCOUNTS_WRITE)

    async def provision(request: Request) -> Response:
        key = api_key(request)
        inputs = await json_input(request, limit, bodies.provision_body)
        account = await account_change(request, "accounts.provision",
            lambda: accounts.provision_account(uow, api_key=key, **inputs()))  # fmt: skip
        return json_response(operator_account_json(account), 201)

    async def list_accounts(request: Request) -> Response:
        await actor(request, READ)
        params = _params(request.scope, {"provider", "page_number", "page_size"})
        page = await accounts.list_accounts(uow, security, OperatorCredentials(api_key(request)),
                                            lambda: bodies.list_query(params))  # fmt: skip
        return json_response({
            "accounts": [operator_account_json(a) for a in page.items],
            "page_number": page.page_number,
            "page_size": page.page_size,
            "total_items": page.total_items,
            "total_pages": page.total_pages,
        })  # fmt: skip

    async def show_account(request: Request) -> Response:
        await actor(request, READ)
        account = await accounts.get_account(uow, security, *account_path(request))
        return json_response(operator_account_json(account))

    async def delete_account(request: Request) -> Response:
        where = account_path(request)
        await account_change(request, "accounts.delete",
                             lambda: accounts.delete_account(uow, security, *where))  # fmt: skip
        return no_content()

    async def set_credentials(request: Request) -> Response:
        _, provider, external_id = account_path(request)
        token = await json_input(request, limit, bodies.credentials_body)
        key = api_key(request)
        account = await account_change(request, "accounts.set-token",
            lambda: accounts.replace_access_token(uow, provider=provider, external_id=external_id,
                                                  access_token=token(), api_key=key))  # fmt: skip
        return json_response(operator_account_json(account))

    async def link(request: Request) -> Response:
        where = account_path(request)
        application = await json_input(request, limit, bodies.link_body)
        account = await account_change(request, "accounts.link",
            lambda: accounts.link_application(uow, security, *where, application))  # fmt: skip
        return json_response(operator_account_json(account))

    async def unlink(request: Request) -> Response:
        where = account_path(request)
        application_id = str(request.scope["path_params"]["application_id"])
        await account_change(request, "accounts.unlink",
            lambda: accounts.unlink_application(uow, security, *where, application_id))  # fmt: skip
        return no_content()

    async def redeliver_failed(request: Request) -> Response:
        params = query(request.scope)
        done = await change(
            request,
            "webhooks.redeliver-failed",
            lambda: webhooks.redeliver_failed(uow, **_params(request.scope, _OUTBOX_FILTERS)),
            params.get("tenant"),
            detail_of=webhooks.redelivered_outcome,
        )
        body = {"redelivered": done.redelivered, "skipped_content_removed": done.skipped}
        return json_response(body)

    spec = served_admin_spec_bytes()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/json")

    tenant = PREFIX + "/tenants/{api_key}"
    one_account = tenant + "/accounts/{provider}/{external_id}"
    return [
        route(PREFIX + "/tenants", GET=list_all, POST=create),
        route(tenant, GET=show, DELETE=delete),
        route(tenant + "/suspend", POST=suspend),
        route(tenant + "/resume", POST=resume),
        route(tenant + "/signature-secret", POST=signature_secret),
        route(tenant + "/limits", GET=get_limits, PUT=put_limits),
        route(tenant + "/messages/{message_uuid}/redact", POST=redact),
        route(tenant + "/accounts", GET=list_accounts, POST=provision),
        route(one_account, GET=show_account, DELETE=delete_account),
        route(one_account + "/credentials", PUT=set_credentials),
        route(one_account + "/applications", POST=link),
        route(one_account + "/applications/{application_id}", DELETE=unlink),
        route(PREFIX + "/audit", GET=audit),
        route(PREFIX + "/webhooks", GET=outbox),
        route(PREFIX + "/webhooks/redeliver", POST=redeliver_failed),
        route(PREFIX + "/webhooks/{webhook_id}/redeliver", POST=redeliver),
        route(PREFIX + "/openapi.json", GET=openapi),
    ]
