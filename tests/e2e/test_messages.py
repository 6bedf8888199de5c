"""Messages through linked accounts, end to end: the real server, HTTP only, webhooks received
by a real HTTP server, on both databases. Every webhook is checked against the Messages spec's
schema for its channel and its signature with Vonage's `vonage_jwt` (messaging.check_webhook)."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import jwt as pyjwt
import pytest

from .messaging import (
    RECIPIENT,
    SENDERS,
    Setup,
    check_webhook,
    text,
)
from .server import cli, new_tenant

pytestmark = pytest.mark.e2e


def _jwt(setup: Setup, private_key: str, **claims: Any) -> str:
    import time
    import uuid

    now = int(time.time())
    body = {"application_id": setup.application_id, "iat": now, "exp": now + 300,
            "jti": str(uuid.uuid4()), **claims}  # fmt: skip
    return pyjwt.encode(body, private_key, algorithm="RS256")


def _check_all(hooks: list[Any], setup: Setup) -> list[dict[str, Any]]:
    secret, key = setup.creds["signature_secret"], setup.creds["api_key"]
    return [check_webhook(h, secret, key, setup.application_id) for h in hooks]


def _sends_on_every_channel(world: Any) -> None:
    server, setup, hooks, _ = world
    private_key = setup.application["keys"]["private_key"]
    sent: dict[str, str] = {}
    for channel in SENDERS:
        answer = setup.client.post("/v1/messages", json=text(channel, client_ref=f"ref-{channel}"))
        assert answer.status_code == 202, answer.text
        assert answer.headers["x-request-id"]
        assert set(answer.json()) == {"message_uuid"}
        sent[f"basic-{channel}"] = answer.json()["message_uuid"]
        bearer = {"Authorization": f"Bearer {_jwt(setup, private_key)}"}
        answer = httpx.post(f"{server.url}/v1/messages", json=text(channel), headers=bearer)
        assert answer.status_code == 202, answer.text
        sent[f"jwt-{channel}"] = answer.json()["message_uuid"]
    got = hooks.wait_for(lambda seen: len(seen) >= 2 * len(sent))
    bodies = _check_all(got, setup)
    for name, message_uuid in sent.items():
        mine = [b for b in bodies if b["message_uuid"] == message_uuid]
        assert [b["status"] for b in mine] == ["submitted", "delivered"], name
        channel = name.split("-", 1)[1]
        assert mine[0]["channel"] == channel and mine[0]["from"] == SENDERS[channel]
        assert mine[0]["to"] == RECIPIENT[channel]
        if name.startswith("basic"):
            assert mine[0]["client_ref"] == f"ref-{channel}"
    # The sandbox lists them with their statuses and the attempts that delivered them.
    listed = setup.client.get("/sandbox/v1/messages", params={"page_size": 100}).json()
    assert listed["total_items"] == len(sent)
    first = next(
        m for m in listed["_embedded"]["messages"] if m["message_uuid"] == sent["basic-rcs"]
    )
    assert [s["status"] for s in first["statuses"]] == ["submitted", "delivered"]
    assert [w["state"] for w in first["webhooks"]] == ["delivered", "delivered"]
    assert first["webhooks"][0]["attempts"][0]["status_code"] == 200


def test_every_422_of_the_contract_and_the_401(world: Any) -> None:
    server, setup, hooks, env = world
    post = setup.client.post

    def error(body: Any, *, raw: bytes | None = None) -> dict[str, Any]:
        if raw is not None:
            answer = setup.client.post("/v1/messages", content=raw,
                                       headers={"Content-Type": "application/json"})  # fmt: skip
        else:
            answer = post("/v1/messages", json=body)
        assert answer.status_code == 422, answer.text
        found: dict[str, Any] = answer.json()
        assert found["instance"] == answer.headers["x-request-id"]
        return found

    assert error(None, raw=b'{"channel": ')["type"].endswith("#invalid-json")
    assert error(text("messenger") | {"channel": "sms"})["type"].endswith("#1100")
    assert error(text("messenger") | {"channel": "mms"})["title"] == "Unsupported channel"
    bad_category = error(text("messenger", messenger={"category": "nope"}))
    assert bad_category["type"].endswith("#1110")
    assert bad_category["invalid_parameters"][0]["name"] == "messenger.category"
    assert error(text("messenger") | {"from": "no-such-page"})["type"].endswith("#1120")
    assert error(text("rcs", to="1" * 40))["title"] == "Invalid recipient"
    assert error(text("viber_service") | {"message_type": "template"})["type"].endswith("#1140")
    many = error({"channel": "whatsapp", "message_type": "image", "to": RECIPIENT["whatsapp"],
                  "from": SENDERS["whatsapp"], "image": {"caption": 5}})  # fmt: skip
    assert many["type"].endswith("#1150")
    names = {p["name"] for p in many["invalid_parameters"]}
    assert {"image.url", "image.caption"} <= names
    assert error(text("rcs", webhook_version="v0.1"))["type"].endswith("#1150")
    assert error(text("rcs", client_ref="x" * 101))["type"].endswith("#1060")
    assert error(text("messenger", text="y" * 641))["invalid_parameters"][0]["name"] == "text"

    # Unlinked, another tenant's, and a JWT of another application: Invalid sender each time.
    done = cli("accounts", "provision", "whatsapp", "447700900999", "--api-key",
               setup.creds["api_key"], env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    unlinked = error(text("whatsapp") | {"from": "447700900999"})
    assert unlinked["title"] == "Invalid sender" and "not linked" in unlinked["detail"]
    other = new_tenant(env)
    as_other = httpx.post(f"{server.url}/v1/messages", json=text("whatsapp"),
                          auth=(other["api_key"], other["api_secret"]))  # fmt: skip
    missing = error(text("whatsapp") | {"from": "447700900998"})
    assert as_other.status_code == 422 and as_other.json()["detail"] == missing["detail"].replace(
        "447700900998", SENDERS["whatsapp"]
    )
    second = setup.client.post(
        "/v2/applications", json={"name": "b", "capabilities": {"messages": {}}}
    )
    token = _jwt(setup, second.json()["keys"]["private_key"], application_id=second.json()["id"])
    foreign = httpx.post(f"{server.url}/v1/messages", json=text("whatsapp"),
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert foreign.status_code == 422 and "this token" in foreign.json()["detail"]

    unauthorised = httpx.post(f"{server.url}/v1/messages", json=text("whatsapp"))
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {
        "type": "https://developer.vonage.com/api-errors/#unathorized",
        "title": "You did not provide correct credentials.",
        "detail": "Check that you're using the correct credentials, and that your account has "
        "this feature enabled",
        "instance": unauthorised.headers["x-request-id"],
    }
    # None of it stored anything, nor sent a webhook.
    assert setup.client.get("/sandbox/v1/messages").json()["total_items"] == 0
    assert hooks.hooks == []


def _reserved_recipients_and_failover(world: Any) -> None:
    _server, setup, hooks, _ = world
    undeliverable = setup.client.post("/v1/messages", json=text("whatsapp", to="447700900001"))
    rejected = setup.client.post("/v1/messages", json=text("viber_service", to="447700900002"))
    failover = setup.client.post(
        "/v1/messages",
        json=text("rcs", to="447700900002") | {"failover": [text("whatsapp")]},
    )
    assert {undeliverable.status_code, rejected.status_code, failover.status_code} == {202}
    assert failover.json()["workflow_id"]
    got = hooks.wait_for(lambda seen: len(seen) >= 6)
    bodies = _check_all(got, setup)
    first = [b for b in bodies if b["message_uuid"] == undeliverable.json()["message_uuid"]]
    assert [b["status"] for b in first] == ["submitted", "undeliverable"]
    assert first[1]["error"]["title"] == "1260"
    second = [b for b in bodies if b["message_uuid"] == rejected.json()["message_uuid"]]
    assert [b["status"] for b in second] == ["rejected"] and second[0]["error"]["title"] == "1282"
    workflow = [b for b in bodies if "workflow" in b]
    assert [(b["channel"], b["status"]) for b in workflow] == [
        ("rcs", "rejected"), ("whatsapp", "submitted"), ("whatsapp", "delivered"),
    ]  # fmt: skip
    assert {b["workflow"]["workflow_id"] for b in workflow} == {failover.json()["workflow_id"]}
    assert [b["workflow"]["items_number"] for b in workflow] == ["1", "2", "2"]


def _sandbox_api(world: Any) -> None:
    server, setup, hooks, _ = world
    private_key = setup.application["keys"]["private_key"]
    sent = setup.client.post("/v1/messages", json=text("whatsapp")).json()["message_uuid"]
    hooks.wait_for(lambda seen: len(seen) >= 2)
    read = setup.client.post(f"/sandbox/v1/messages/{sent}/read")
    assert read.status_code == 202
    inbound = setup.client.post("/sandbox/v1/inbound", json={
        "channel": "whatsapp", "to": SENDERS["whatsapp"], "from": "447700900555",
        "message_type": "text", "text": "hi back", "context": sent, "profile": {"name": "Ann"},
    })  # fmt: skip
    assert inbound.status_code == 202, inbound.text
    for channel in ("messenger", "viber_service", "rcs"):
        answer = setup.client.post("/sandbox/v1/inbound", json={
            "channel": channel, "to": SENDERS[channel], "from": RECIPIENT[channel],
            "message_type": "text", "text": f"from a {channel} customer"})  # fmt: skip
        assert answer.status_code == 202, answer.text
    got = hooks.wait_for(lambda seen: len(seen) >= 7)
    bodies = _check_all(got[:7], setup)
    assert [b["status"] for b in bodies if b.get("message_uuid") == sent] == [
        "submitted", "delivered", "read"]  # fmt: skip
    received = next(b for b in bodies if b.get("message_uuid") == inbound.json()["message_uuid"])
    assert received["text"] == "hi back" and received["profile"] == {"name": "Ann"}
    assert received["context"] == {"message_uuid": sent, "message_from": SENDERS["whatsapp"]}
    assert received["context_status"] == "available"
    assert {h.path for h in got if "status" not in h.json} == {"/inbound"}
    # PATCH: read an inbound WhatsApp message with the application's JWT; foreign uuids 404.
    bearer = {"Authorization": f"Bearer {_jwt(setup, private_key)}"}
    url = f"{server.url}/v1/messages/{inbound.json()['message_uuid']}"
    assert httpx.patch(url, json={"status": "read"}, headers=bearer).status_code == 202
    assert httpx.patch(url, json={"status": "revoked"}, headers=bearer).status_code == 422
    unknown = httpx.patch(f"{server.url}/v1/messages/00000000-0000-4000-8000-000000000000",
                          json={"status": "read"}, headers=bearer)  # fmt: skip
    assert unknown.status_code == 404 and unknown.json()["title"] == "Not Found"
    assert setup.client.patch(url, json={"status": "read"}).status_code == 401  # Bearer only
    # Revoke: an RCS message not yet delivered (0003 stays submitted); a delivered one refuses.
    pending = setup.client.post("/v1/messages", json=text("rcs", to="447700900003"))
    revoke = f"{server.url}/v1/messages/{pending.json()['message_uuid']}"
    assert httpx.patch(revoke, json={"status": "revoked"}, headers=bearer).status_code == 202
    again = httpx.patch(f"{server.url}/v1/messages/{sent}", json={"status": "revoked"},
                        headers=bearer)  # fmt: skip
    assert again.status_code == 422 and again.json()["invalid_parameters"][0]["name"] == "status"
    shown = setup.client.get("/sandbox/v1/messages", params={"account": SENDERS["rcs"],
                                                             "direction": "outbound"}).json()  # fmt: skip
    assert [s["status"] for s in shown["_embedded"]["messages"][0]["statuses"]] == [
        "submitted", "revoked"]  # fmt: skip
    # An account with no linked application: 422, nothing stored.
    listed = setup.client.get("/sandbox/v1/messages", params={"direction": "inbound"}).json()
    assert listed["total_items"] == 4
    unlink = setup.client.delete(
        f"/beta/chatapp-accounts/rcs/{SENDERS['rcs']}/applications/{setup.application_id}"
    )
    assert unlink.status_code == 204
    refused = setup.client.post("/sandbox/v1/inbound", json={
        "channel": "rcs", "to": SENDERS["rcs"], "from": "447700900555", "message_type": "text",
        "text": "anyone?"})  # fmt: skip
    assert refused.status_code == 422 and "not linked" in refused.json()["detail"]
    after = setup.client.get("/sandbox/v1/messages", params={"direction": "inbound"}).json()
    assert after["total_items"] == 4


def _receiver_failing_for_a_while(world: Any) -> None:
    _server, setup, hooks, _ = world
    failures = iter(range(4))
    hooks.answer = lambda path, n: 500 if next(failures, None) is not None else 200
    uuids = [setup.client.post("/v1/messages", json=text("messenger")).json()["message_uuid"]
             for _ in range(3)]  # fmt: skip
    got = hooks.wait_for(lambda seen: len(seen) >= 6, timeout=30)
    _check_all(got, setup)
    for message_uuid in uuids:
        assert hooks.statuses(message_uuid) == ["submitted", "delivered"]
    listed = setup.client.get("/sandbox/v1/messages").json()["_embedded"]["messages"]
    attempts = [a for m in listed for w in m["webhooks"] for a in w["attempts"]]
    assert sum(1 for a in attempts if a["status_code"] == 500) == 4
    assert all(a["next_attempt_at"] for a in attempts if a["status_code"] == 500)


def _receiver_answering_4xx(world: Any) -> None:
    _server, setup, hooks, env = world
    hooks.answer = lambda path, n: 410
    message_uuid = setup.client.post("/v1/messages", json=text("rcs")).json()["message_uuid"]

    def failed() -> list[dict[str, Any]]:
        shown = cli("webhooks", "list", "--state", "failed", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        found: list[dict[str, Any]] = json.loads(shown.stdout)
        return found

    import time

    deadline = time.monotonic() + 20
    while len(failed()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    hooks_failed = failed()
    assert len(hooks_failed) == 2 and {h["message_uuid"] for h in hooks_failed} == {message_uuid}
    assert all(len(h["attempts"]) == 1 and h["attempts"][0]["status_code"] == 410
               for h in hooks_failed)  # fmt: skip
    assert hooks.hooks == []
    hooks.answer = lambda path, n: 200
    first = min(hooks_failed, key=lambda h: int(h["id"]))
    again = cli("webhooks", "redeliver", first["id"], env=env)
    assert again.returncode == 0, again.stderr
    key = setup.creds["api_key"]
    every = cli("webhooks", "redeliver", "--failed", "--tenant", key, "--json", env=env)
    assert every.returncode == 0, every.stderr
    assert json.loads(every.stdout) == {"redelivered": 1, "skipped_content_removed": 0}
    got = hooks.wait_for(lambda seen: len(seen) >= 2)
    assert sorted(b["status"] for b in _check_all(got, setup)) == ["delivered", "submitted"]
    assert failed() == []
    audit = cli("audit", "export", "--tenant", key, env=env).stdout.splitlines()
    assert [(e["action"], e["outcome"]) for e in map(json.loads, audit)][-2:] == [
        ("webhooks.redeliver", "ok"),
        ("webhooks.redeliver-failed", "ok: 1 redelivered, 0 skipped (content removed)")]  # fmt: skip
    unknown = cli("webhooks", "redeliver", "999999", env=env)
    assert unknown.returncode == 1 and "no webhook" in unknown.stderr


def _sandbox_cli(world: Any) -> None:
    _server, setup, hooks, env = world
    sent = setup.client.post("/v1/messages", json=text("viber_service")).json()["message_uuid"]
    hooks.wait_for(lambda seen: "delivered" in hooks.statuses(sent))
    assert cli("sandbox", "read", sent, env=env).returncode == 0
    made = cli("sandbox", "inbound", "viber_service", SENDERS["viber_service"], "447700900777",
               "--text", "hello from the shell", "--context", sent, env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    got = hooks.wait_for(
        lambda seen: (
            any(h.json["message_uuid"] == made.stdout.strip() for h in seen)
            and "read" in hooks.statuses(sent)
        )
    )
    bodies = _check_all(got, setup)
    assert hooks.statuses(sent) == ["submitted", "delivered", "read"]
    inbound = next(b for b in bodies if b["message_uuid"] == made.stdout.strip())
    assert inbound["text"] == "hello from the shell" and inbound["context"]["message_uuid"] == sent
    listed = json.loads(
        cli("sandbox", "messages", "--direction", "inbound", "--json", env=env).stdout
    )
    assert listed["messages"][0]["message_uuid"] == made.stdout.strip()
    table = cli("sandbox", "messages", "--direction", "inbound", env=env).stdout.splitlines()
    newest = listed["messages"][0]
    assert table[0].split()[:3] == [newest["message_uuid"], "inbound", newest["channel"]]
    assert table[-1].startswith("page 1 of 1, ")
    none = cli("sandbox", "messages", "--status", "rejected", "--account", "nobody", env=env)
    assert none.stdout == "no messages\n"
    bad = cli(
        "sandbox", "inbound", "viber_service", "no-such", "447700900777", "--text", "x", env=env
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "no-such" in bad.stderr


# One server and tenant for several checks each: every world costs a server and six CLI runs.


def test_sends_on_every_channel_then_reserved_recipients_and_failover(world: Any) -> None:
    _sends_on_every_channel(world)
    world[2].hooks.clear()
    _reserved_recipients_and_failover(world)


def test_sandbox_api_then_cli(world: Any) -> None:
    _sandbox_api(world)
    world[2].hooks.clear()
    _sandbox_cli(world)


def test_a_4xx_receiver_then_one_failing_for_a_while(world: Any) -> None:
    _receiver_answering_4xx(world)
    world[2].hooks.clear()
    _receiver_failing_for_a_while(world)
