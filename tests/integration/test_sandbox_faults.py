"""An account's fault switches through the sandbox API, on both databases, with the real
sender and the sandbox channel: `fail` ends every send from the account as the reserved
recipients do (`rejected` 1282; `submitted` then `undeliverable` 1260), `delay` holds its sends
back while the rest go on; another tenant neither reads nor sets them (404); a refused body
changes nothing; the served spec has the routes the server has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from chatapp_accounts.api.app import create_app
from chatapp_accounts.api.http import Services
from chatapp_accounts.api.openapi import served_sandbox_spec_bytes
from chatapp_accounts.api.sandbox import PREFIX, sandbox_routes
from chatapp_accounts.config import Settings
from chatapp_accounts.security.service import SecurityService
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds
from tests.e2e.messaging import Receiver, receiver
from tests.jwt_tokens import sdk_token

from .helpers import assert_error, new_messenger, served_and_documented

FAULTY, FINE = "page-faulty", "page-fine"
FAULTS = f"{PREFIX}/accounts/messenger/{FAULTY}/faults"
NONE = {"delay": 0.0, "fail": None}


@dataclass
class World:
    client: TestClient
    hooks: Receiver
    alice: TenantCreds
    private_key: str
    application_id: str

    def send(self, sender: str, to: str = "user-1") -> str:
        sent = self.client.post("/v1/messages", headers=self.alice.headers, json={
            "channel": "messenger", "message_type": "text", "to": to, "from": sender,
            "text": "hi"})  # fmt: skip
        assert sent.status_code == 202, sent.text
        return str(sent.json()["message_uuid"])

    def put(self, body: Any, who: TenantCreds | None = None) -> Any:
        return self.client.put(FAULTS, json=body, headers=(who or self.alice).headers)

    def get(self, who: TenantCreds | None = None) -> Any:
        return self.client.get(FAULTS, headers=(who or self.alice).headers)

    def ended(self, message_uuid: str) -> list[str]:
        """The message's status webhooks, once it ended (a failure, or delivered)."""
        final = {"rejected", "undeliverable", "delivered"}
        self.hooks.wait_for(lambda _: bool(final & set(self.hooks.statuses(message_uuid))))
        return self.hooks.statuses(message_uuid)

    def error(self, message_uuid: str) -> dict[str, str]:
        (hook,) = [h.json for h in self.hooks.hooks
                   if h.json.get("message_uuid") == message_uuid and "error" in h.json]  # fmt: skip
        error: dict[str, str] = hook["error"]
        return error


@pytest.fixture
def world(settings: Settings, engine: Any, alice: TenantCreds) -> Iterator[World]:
    app = create_app(settings.with_(access_log=False), engine=engine)
    with receiver() as hooks, TestClient(app, raise_server_exceptions=False) as client:
        webhooks = {"status_url": {"address": hooks.url + "/status", "http_method": "POST"},
                    "inbound_url": {"address": hooks.url + "/inbound", "http_method": "POST"}}  # fmt: skip
        made = client.post("/v2/applications", headers=alice.headers, json={
            "name": "app", "capabilities": {"messages": {"webhooks": webhooks}}})  # fmt: skip
        assert made.status_code == 201, made.text
        application = made.json()
        for page in (FAULTY, FINE):
            new_messenger(client, alice, page)
            linked = client.post(
                f"/beta/chatapp-accounts/messenger/{page}/applications",
                json={"application": application["id"]}, headers=alice.headers,
            )  # fmt: skip
            assert linked.status_code == 200, linked.text
        yield World(client, hooks, alice, application["keys"]["private_key"], application["id"])


def test_fail_ends_every_send_from_the_account_as_the_reserved_recipients_do(
    world: World,
) -> None:
    assert world.get().json() == NONE  # a new account has none
    put = world.put({"fail": "rejected"})
    assert put.status_code == 200, put.text
    assert put.json() == {"delay": 0.0, "fail": "rejected"} == world.get().json()
    rejected, other = world.send(FAULTY), world.send(FINE)
    assert world.ended(rejected) == ["rejected"]
    error = world.error(rejected)
    assert error["type"].endswith("#1282") and error["title"] == "1282"
    assert error["detail"].startswith("Message rejected by provider")
    assert world.ended(other) == ["submitted", "delivered"]  # the account's own switch only

    assert world.put({"fail": "undeliverable"}).status_code == 200
    lost = world.send(FAULTY)
    assert world.ended(lost) == ["submitted", "undeliverable"]
    error = world.error(lost)
    assert error["type"].endswith("#1260") and error["detail"].startswith("Destination unreachable")

    cleared = world.put({"delay": 0, "fail": None})
    assert cleared.status_code == 200 and cleared.json() == NONE
    assert world.ended(world.send(FAULTY)) == ["submitted", "delivered"]
    listed = world.client.get(f"{PREFIX}/messages", params={"account": FAULTY},
                              headers=world.alice.headers).json()  # fmt: skip
    statuses = [m["status"] for m in listed["_embedded"]["messages"]]
    assert statuses == ["delivered", "undeliverable", "rejected"]  # newest first


def test_a_delay_holds_the_accounts_sends_back_and_the_rest_go_on(world: World) -> None:
    put = world.put({"delay": 2})
    assert put.status_code == 200 and put.json() == {"delay": 2.0, "fail": None}
    slow = world.send(FAULTY)
    shown = world.client.get(f"{PREFIX}/messages", params={"account": FAULTY},
                             headers=world.alice.headers).json()  # fmt: skip
    [queued] = shown["_embedded"]["messages"]
    assert queued["message_uuid"] == slow and queued["status"] is None  # accepted, not sent
    quick = world.send(FINE)  # the server answers while the sandbox waits
    assert world.ended(slow) == ["submitted", "delivered"]
    assert world.ended(quick) == ["submitted", "delivered"]
    order = [h.json["message_uuid"] for h in world.hooks.hooks if h.path == "/status"]
    assert order.index(quick) < order.index(slow)  # sent after it, delivered before it


def test_another_tenant_neither_reads_nor_sets_them(world: World, bob: TenantCreds) -> None:
    assert world.put({"delay": 1, "fail": "rejected"}).status_code == 200
    for answer in (world.get(bob), world.put({"fail": None}, bob)):
        body = assert_error(answer, 404, type_suffix="#not-found")
        assert body["title"] == "Not Found"
    unknown = [f"{PREFIX}/accounts/messenger/no-such-page/faults",
               f"{PREFIX}/accounts/sms/{FAULTY}/faults",  # not a channel of the sandbox's
               f"{PREFIX}/accounts/whatsapp/{FAULTY}/faults"]  # fmt: skip
    for url in unknown:
        assert_error(world.client.get(url, headers=world.alice.headers), 404)
        assert_error(world.client.put(url, json={}, headers=world.alice.headers), 404)
    assert world.client.get(FAULTS).status_code == 401
    assert world.client.put(FAULTS, json={}).status_code == 401
    assert world.get().json() == {"delay": 1.0, "fail": "rejected"}  # unchanged
    # A JWT of the tenant's application acts as the tenant, as on the rest of the sandbox API.
    token = sdk_token(world.application_id, world.private_key)
    bearer = {"Authorization": f"Bearer {token}"}
    assert world.client.get(FAULTS, headers=bearer).json() == {"delay": 1.0, "fail": "rejected"}
    assert world.client.put(FAULTS, json={}, headers=bearer).json() == NONE


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"delay": -1}, ["delay"]),
        ({"delay": 9.5}, ["delay"]),  # past a second less than the provider timeout (10 s)
        ({"delay": 10**400}, ["delay"]),
        ({"delay": "2"}, ["delay"]),
        ({"delay": True}, ["delay"]),
        ({"delay": None}, ["delay"]),
        ({"fail": "lost"}, ["fail"]),
        ({"fail": 1282}, ["fail"]),
        ({"fail": "Rejected", "delay": 60}, ["delay", "fail"]),
        ({"delay": 1, "retry": True}, ["retry"]),
    ],
)
def test_a_refused_body_changes_nothing(world: World, body: Any, names: list[str]) -> None:
    assert world.put({"delay": 1.5, "fail": "undeliverable"}).status_code == 200
    answer = world.client.put(FAULTS, content=json.dumps(body), headers={
        **world.alice.headers, "Content-Type": "application/json"})  # fmt: skip
    refused = assert_error(answer, 422, type_suffix="#1150")
    assert sorted(p["name"] for p in refused["invalid_parameters"]) == names
    assert world.get().json() == {"delay": 1.5, "fail": "undeliverable"}


@pytest.mark.parametrize(
    ("content", "media_type", "status"),
    [(b"{", "application/json", 422), (b"[]", "application/json", 422),
     (b"", "application/json", 422), (b'{"delay": 1}', "text/plain", 415)],
)  # fmt: skip
def test_a_body_that_is_not_a_json_object_changes_nothing(
    world: World, content: bytes, media_type: str, status: int
) -> None:
    answer = world.client.put(FAULTS, content=content, headers={
        **world.alice.headers, "Content-Type": media_type})  # fmt: skip
    assert_error(answer, status)
    assert world.get().json() == NONE


def test_the_served_spec_has_the_sandbox_routes(
    settings: Settings, uow_factory: SqlUnitOfWorkFactory
) -> None:
    services = Services(settings, uow_factory, SecurityService())
    served, documented = served_and_documented(
        sandbox_routes(services), served_sandbox_spec_bytes()
    )
    assert served - {(f"{PREFIX}/openapi.json", "GET")} == documented
