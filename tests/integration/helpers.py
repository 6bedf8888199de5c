"""Small request helpers for the HTTP tests."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from chatapp_accounts.domain import admin
from chatapp_accounts.security.service import SecurityService
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, sync

EA = "/beta/chatapp-accounts"
APPS = "/v2/applications"

MESSAGES = {
    "messages": {
        "webhooks": {
            "inbound_url": {"address": "https://example.com/inbound", "http_method": "POST"},
            "status_url": {"address": "https://example.com/status", "http_method": "POST"},
        }
    }
}


def new_application(
    client: TestClient, who: TenantCreds, *, messages: bool = True, name: str = "app"
) -> dict[str, Any]:
    capabilities = MESSAGES if messages else {"voice": {}}
    r = client.post(APPS, json={"name": name, "capabilities": capabilities}, headers=who.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def new_messenger(
    client: TestClient, who: TenantCreds, external_id: str, **extra: Any
) -> dict[str, Any]:
    payload = {"external_id": external_id, "access_token": f"token-{external_id}", **extra}
    r = client.post(f"{EA}/messenger", json=payload, headers=who.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_error(
    response: Any, status: int, *, detail: str | None = None, type_suffix: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    if detail is not None:
        assert body["detail"] == detail
    if type_suffix is not None:
        assert body["type"].endswith(type_suffix)
    if "instance" in body:
        assert body["instance"] == response.headers["x-request-id"]
    return body


def served_and_documented(routes: list[Any], spec_bytes: bytes) -> tuple[set[Any], set[Any]]:
    """(path, METHOD) of each route's handlers (HEAD aside), and of each operation of the
    served spec (its server URL before its paths): the two should be the same."""
    served: set[tuple[str, str]] = set()
    for route in routes:
        handlers = getattr(route.endpoint, "handlers", {})
        served |= {(route.path, method) for method in handlers if method != "HEAD"}
    spec = json.loads(spec_bytes)
    base = spec["servers"][0]["url"]
    documented = {
        (base + path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    return served, documented


# --- The admin API -------------------------------------------------------------------


def token(uow_factory: SqlUnitOfWorkFactory, name: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a new admin token with these scopes."""
    made = sync(admin.create_admin_token(uow_factory, SecurityService(), name, list(scopes)))
    return {"Authorization": f"Bearer {made.token}"}


def problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    """The admin API's problem+json answer, of this status and kind."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:chatapp-accounts:admin:{kind}"
    assert body["instance"] == response.headers["x-request-id"]
    assert {"title", "detail"} <= set(body)
    return body
