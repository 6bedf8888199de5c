"""A tenant's accounts through the admin API (docs/operations.md), on both databases: every
provider provisioned as `accounts provision` does it (the same use case and checks), live
credentials write-only (never in an answer nor the audit log, stored encrypted), linked and
unlinked as the External Accounts API links them (and seen so through the tenant's own API),
a live token replaced, an account deleted; each change in the audit log with the token's name
and the tenant; scopes refused (403), tenant credentials too (401); bad input changing
nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from chatapp_accounts.api.admin import PREFIX
from chatapp_accounts.domain.models import Provider
from chatapp_accounts.storage.tables import accounts as accounts_table
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, read, sync

from .helpers import EA, new_application, problem, token
from .test_admin_api import TENANTS

PAGE_TOKEN = "EAAB-page-secret-0001"
WA_TOKEN = "EAAB-whatsapp-secret-0002"
NEW_TOKEN = "EAAB-whatsapp-secret-0003"
SECRETS = (PAGE_TOKEN, WA_TOKEN, NEW_TOKEN)

BODIES = [
    {"provider": "messenger", "external_id": "page-1", "name": "Page", "access_token": PAGE_TOKEN},
    {"provider": "viber_service_msg", "external_id": "viber-1"},
    {"provider": "whatsapp", "external_id": "447700900001", "access_token": WA_TOKEN,
     "phone_number_id": "1001", "waba_id": "2002"},
    {"provider": "whatsapp", "external_id": "447700900002", "name": "Sandbox number"},
    {"provider": "rcs", "external_id": "agent-1", "name": "Agent"},
]  # fmt: skip


def accounts_of(key: str) -> str:
    return f"{TENANTS}/{key}/accounts"


def stored_tokens(uow_factory: SqlUnitOfWorkFactory) -> dict[str, bytes | None]:
    """The access_token column as the database holds it."""
    with uow_factory.db.engine.begin() as conn:
        rows = conn.execute(select(accounts_table.c.external_id, accounts_table.c.access_token))
        return {e: None if t is None else bytes(t) for e, t in rows.all()}


def token_of(uow_factory: SqlUnitOfWorkFactory, who: TenantCreds, provider: Provider,
             external_id: str) -> str | None:  # fmt: skip
    account = sync(read(uow_factory, lambda uow: uow.accounts.get(who.tenant.id, provider,
                                                                  external_id)))  # fmt: skip
    assert account is not None
    return account.access_token


def audit(client: TestClient, root: dict[str, str], **params: str) -> list[dict[str, Any]]:
    answer = client.get(f"{PREFIX}/audit", params=params, headers=root)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def test_an_operator_provisions_links_and_retires_a_tenants_accounts(
    client: TestClient, uow_factory: SqlUnitOfWorkFactory, root: dict[str, str],
    alice: TenantCreds,
) -> None:  # fmt: skip
    base = accounts_of(alice.api_key)
    app = new_application(client, alice)
    seen = ""
    for body in BODIES:
        made = client.post(base, json=body, headers=root)
        assert made.status_code == 201, made.text
        expected = {"external_id": body["external_id"], "api_key": alice.api_key,
                    "provider": body["provider"], "applications": []}  # fmt: skip
        if "name" in body:
            expected["name"] = body["name"]
        assert made.json() == expected
        seen += made.text

    listed = client.get(base, headers=root)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert [a["external_id"] for a in page["accounts"]] == [b["external_id"] for b in BODIES]
    assert (page["page_number"], page["total_items"], page["total_pages"]) == (1, 5, 1)
    only = client.get(base, params={"provider": "whatsapp", "page_size": "1"}, headers=root)
    assert [a["external_id"] for a in only.json()["accounts"]] == ["447700900001"]
    assert only.json()["total_pages"] == 2
    for body in BODIES:
        shown = client.get(f"{base}/{body['provider']}/{body['external_id']}", headers=root)
        assert shown.status_code == 200 and "access_token" not in shown.json()
        seen += shown.text
    seen += listed.text
    assert not any(secret in seen for secret in SECRETS)

    # Stored sealed, as the CLI's path stores them; the tenant's own API shows its page token.
    raw = stored_tokens(uow_factory)
    assert raw["viber-1"] is None and raw["agent-1"] is None
    assert PAGE_TOKEN.encode() not in (raw["page-1"] or b"")
    assert WA_TOKEN.encode() not in (raw["447700900001"] or b"")
    assert token_of(uow_factory, alice, Provider.WHATSAPP, "447700900001") == WA_TOKEN
    its_page = client.get(f"{EA}/messenger/page-1", headers=alice.headers).json()
    assert its_page["access_token"] == PAGE_TOKEN

    # Linked as the External Accounts API links: seen so through the tenant's own API.
    for provider, external_id in (("messenger", "page-1"), ("rcs", "agent-1")):
        linked = client.post(f"{base}/{provider}/{external_id}/applications",
                             json={"application": app["id"]}, headers=root)  # fmt: skip
        assert linked.status_code == 200, linked.text
        assert linked.json()["applications"] == [app["id"]]
        assert PAGE_TOKEN not in linked.text
    its_list = client.get(EA, headers=alice.headers).json()["_embedded"]
    assert {a["external_id"]: a["applications"] for a in its_list}["agent-1"] == [app["id"]]
    assert client.get(f"{EA}/messenger/page-1", headers=alice.headers).json()["applications"] == [
        app["id"]
    ]
    unlinked = client.delete(f"{base}/rcs/agent-1/applications/{app['id']}", headers=root)
    assert unlinked.status_code == 204, unlinked.text
    its_list = client.get(EA, params={"provider": "rcs"}, headers=alice.headers).json()
    assert its_list["_embedded"][0]["applications"] == []

    # A live number's token replaced, write-only.
    replaced = client.put(f"{base}/whatsapp/447700900001/credentials",
                          json={"access_token": NEW_TOKEN}, headers=root)  # fmt: skip
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["external_id"] == "447700900001"
    assert "access_token" not in replaced.json() and NEW_TOKEN not in replaced.text
    assert token_of(uow_factory, alice, Provider.WHATSAPP, "447700900001") == NEW_TOKEN
    assert NEW_TOKEN.encode() not in (stored_tokens(uow_factory)["447700900001"] or b"")

    gone = client.delete(f"{base}/viber_service_msg/viber-1", headers=root)
    assert gone.status_code == 204, gone.text
    problem(client.get(f"{base}/viber_service_msg/viber-1", headers=root), 404, "not-found")
    problem(client.delete(f"{base}/viber_service_msg/viber-1", headers=root), 404, "not-found")

    entries = audit(client, root, tenant=alice.api_key)
    assert [(e["actor"], e["action"], e["outcome"]) for e in entries] == [
        *[("root", "accounts.provision", "ok")] * len(BODIES),
        ("root", "accounts.link", "ok"),
        ("root", "accounts.link", "ok"),
        ("root", "accounts.unlink", "ok"),
        ("root", "accounts.set-token", "ok"),
        ("root", "accounts.delete", "ok"),
        ("root", "accounts.delete", "error: AccountNotFound: Account not found"),
    ]
    assert all(e["tenant"] == alice.api_key and e["request_id"] for e in entries)
    assert entries[-3]["request_id"] == replaced.headers["x-request-id"]
    everything = json.dumps(audit(client, root))
    assert not any(secret in everything for secret in SECRETS)


def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient, uow_factory: SqlUnitOfWorkFactory, root: dict[str, str],
    alice: TenantCreds, bob: TenantCreds,
) -> None:  # fmt: skip
    base = accounts_of(alice.api_key)
    for body in (BODIES[0], BODIES[4]):
        assert client.post(base, json=body, headers=root).status_code == 201
    bobs = client.post(accounts_of(bob.api_key), headers=root, json={
        "provider": "whatsapp", "external_id": "447700900009", "access_token": WA_TOKEN,
        "phone_number_id": "9", "waba_id": "9"})  # fmt: skip
    assert bobs.status_code == 201, bobs.text
    before = stored_tokens(uow_factory)

    refused = [
        ({}, ["provider", "external_id"]),
        ({"provider": "telegram", "external_id": "t1"}, ["provider"]),
        ({"provider": "rcs", "external_id": 5}, ["external_id"]),
        ({"provider": "rcs", "external_id": "r2", "colour": "red"}, ["colour"]),
        ({"provider": "messenger", "external_id": "page-2"}, ["access_token"]),
        ({"provider": "rcs", "external_id": "r2", "access_token": PAGE_TOKEN}, ["access_token"]),
        ({"provider": "whatsapp", "external_id": "447700900003", "access_token": WA_TOKEN},
         ["phone_number_id"]),
        ({"provider": "viber_service_msg", "external_id": "bad id", "name": "a\x85b"},
         ["external_id", "name"]),
        ({"provider": "rcs", "external_id": "r2", "waba_id": "1"}, ["waba_id"]),
    ]  # fmt: skip
    for body, names in refused:
        answer = problem(client.post(base, json=body, headers=root), 400, "invalid")
        assert [p["name"] for p in answer["invalid_parameters"]] == names, body
    problem(client.post(base, content=b"{", headers={**root, "Content-Type": "application/json"}),
            400, "invalid")  # fmt: skip
    problem(client.post(base, content=b"x", headers={**root, "Content-Type": "text/plain"}), 415,
            "media-type")  # fmt: skip
    problem(client.get(base, params={"colour": "red"}, headers=root), 400, "invalid")
    problem(client.get(base, params={"page_size": "0"}, headers=root), 400, "invalid")

    # Unknown tenant: 404; a taken account: 409 (to this tenant or another).
    for key in ("nobody", "x" * 40):
        problem(client.post(accounts_of(key), json=BODIES[1], headers=root), 404, "not-found")
        problem(client.get(accounts_of(key), headers=root), 404, "not-found")
        problem(client.get(f"{accounts_of(key)}/rcs/agent-1", headers=root), 404, "not-found")
    problem(client.post(base, json=BODIES[4], headers=root), 409, "conflict")
    problem(client.post(base, json={"provider": "whatsapp", "external_id": "447700900009"},
                        headers=root), 409, "conflict")  # fmt: skip

    # Links: no such application, one without messages, another tenant's: 422; a second one: 409.
    voice = new_application(client, alice, messages=False)
    theirs = new_application(client, bob)
    mine = new_application(client, alice)
    link = f"{base}/messenger/page-1/applications"
    for application in ("nope", voice["id"], theirs["id"]):
        problem(client.post(link, json={"application": application}, headers=root), 422,
                "unprocessable")  # fmt: skip
    problem(client.post(link, json={}, headers=root), 400, "invalid")
    problem(client.post(f"{base}/telegram/page-1/applications", json={"application": mine["id"]},
                        headers=root), 422, "unprocessable")  # fmt: skip
    assert client.post(link, json={"application": mine["id"]}, headers=root).status_code == 200
    other = new_application(client, alice)
    problem(client.post(link, json={"application": other["id"]}, headers=root), 409, "conflict")
    problem(client.delete(f"{link}/{other['id']}", headers=root), 409, "conflict")

    # Credentials: only a live channel's; only the tenant's own account.
    creds = f"{base}/rcs/agent-1/credentials"
    problem(client.put(creds, json={"access_token": NEW_TOKEN}, headers=root), 400, "invalid")
    problem(client.put(f"{base}/messenger/page-1/credentials", json={"token": "x"},
                       headers=root), 400, "invalid")  # fmt: skip
    problem(client.put(f"{base}/whatsapp/447700900009/credentials",
                       json={"access_token": NEW_TOKEN}, headers=root), 404, "not-found")  # fmt: skip
    problem(client.put(f"{base}/whatsapp/447700900404/credentials",
                       json={"access_token": NEW_TOKEN}, headers=root), 404, "not-found")  # fmt: skip
    problem(client.delete(f"{base}/whatsapp/447700900009", headers=root), 404, "not-found")

    # A suspended tenant's accounts wait for it to be resumed.
    assert client.post(f"{TENANTS}/{alice.api_key}/suspend", headers=root).status_code == 200
    problem(client.post(base, json=BODIES[1], headers=root), 409, "conflict")
    problem(client.delete(f"{base}/rcs/agent-1", headers=root), 409, "conflict")
    assert client.post(f"{TENANTS}/{alice.api_key}/resume", headers=root).status_code == 200

    assert stored_tokens(uow_factory) == before
    assert token_of(uow_factory, bob, Provider.WHATSAPP, "447700900009") == WA_TOKEN
    listed = client.get(base, headers=root).json()["accounts"]
    assert [(a["external_id"], a["applications"]) for a in listed] == [
        ("page-1", [mine["id"]]),
        ("agent-1", []),
    ]
    entries = audit(client, root, tenant=alice.api_key)
    failed = [e for e in entries if e["outcome"] != "ok"]
    assert len(failed) > 20 and all(e["outcome"].startswith("error: ") for e in failed)
    assert not any(secret in json.dumps(entries) for secret in SECRETS)


def test_who_may_change_a_tenants_accounts(
    client: TestClient, uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds,
) -> None:  # fmt: skip
    base = accounts_of(alice.api_key)
    reader = token(uow_factory, "reader", "read")
    tenants_only = token(uow_factory, "tenants", "read", "tenants:write")
    writer = token(uow_factory, "writer", "accounts:write")
    app = new_application(client, alice)
    for headers in (reader, tenants_only):
        problem(client.post(base, json=BODIES[4], headers=headers), 403, "forbidden")
    assert client.post(base, json=BODIES[4], headers=writer).status_code == 201
    problem(client.get(base, headers=writer), 403, "forbidden")  # no `read`
    changes = [
        ("PUT", f"{base}/rcs/agent-1/credentials", {"access_token": NEW_TOKEN}),
        ("POST", f"{base}/rcs/agent-1/applications", {"application": app["id"]}),
        ("DELETE", f"{base}/rcs/agent-1/applications/{app['id']}", None),
        ("DELETE", f"{base}/rcs/agent-1", None),
        ("POST", base, BODIES[1]),
    ]
    for method, url, body in changes:
        for headers in (reader, tenants_only):
            problem(client.request(method, url, json=body, headers=headers), 403, "forbidden")
        for headers in ({}, alice.headers, {"Authorization": "Bearer nope"}):
            problem(client.request(method, url, json=body, headers=headers), 401, "unauthorized")
    assert [a["external_id"] for a in client.get(base, headers=reader).json()["accounts"]] == [
        "agent-1"
    ]
    assert client.get(f"{base}/rcs/agent-1", headers=reader).json()["applications"] == []
    # Refusals by scope are not changes: only the writer's provision is in the log.
    entries = client.get(f"{PREFIX}/audit", headers=reader).json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [("writer", "accounts.provision")]
