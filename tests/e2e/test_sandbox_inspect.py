"""What the web inbox shows and does, through the sandbox API (docs/inbox.md): conversations,
search and `latest`, a webhook's attempts with their signature checked, redeliver, and edit and
resend. On both databases, against the real server and a real receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatapp_accounts.security.webhooks import MISMATCH

from .messaging import (
    RECIPIENT,
    SENDERS,
    Receiver,
    Setup,
    check_webhook,
    text,
)
from .server import cli, new_tenant

pytestmark = pytest.mark.e2e
SB = "/sandbox/v1"


def _send(setup: Setup, **message: Any) -> str:
    sent = setup.client.post("/v1/messages", json=text("whatsapp", **message))
    assert sent.status_code == 202, sent.text
    return str(sent.json()["message_uuid"])


def _delivered(hooks: Receiver, uuid: str) -> None:
    hooks.wait_for(lambda _: "delivered" in hooks.statuses(uuid))


def test_conversations_search_and_latest(world: Any) -> None:
    _, setup, hooks, _ = world
    http = setup.client
    first = _send(setup, text="first hello")
    other = _send(setup, to="447700900555", text="to someone else")
    inbound = http.post(f"{SB}/inbound", json={"channel": "whatsapp", "to": SENDERS["whatsapp"],
                                               "from": RECIPIENT["whatsapp"],
                                               "message_type": "text", "text": "a reply"})  # fmt: skip
    assert inbound.status_code == 202, inbound.text
    reply = inbound.json()["message_uuid"]
    _delivered(hooks, other)

    threads = http.get(f"{SB}/conversations").json()["conversations"]
    mine = {(c["channel"], c["account"], c["customer"]): c for c in threads}
    thread = mine[("whatsapp", SENDERS["whatsapp"], RECIPIENT["whatsapp"])]
    assert thread["messages"] == 2 and thread["last"]["message_uuid"] == reply
    assert mine[("whatsapp", SENDERS["whatsapp"], "447700900555")]["messages"] == 1
    assert threads[0]["last"]["message_uuid"] == reply  # the latest first

    def found(q: str) -> list[str]:
        page = http.get(f"{SB}/messages", params={"q": q, "page_size": 100})
        assert page.status_code == 200, page.text
        return [m["message_uuid"] for m in page.json()["_embedded"]["messages"]]

    assert found("hello") == [first]
    assert found("to:447700900555") == [other]
    assert found(f"account:{SENDERS['whatsapp']} direction:inbound") == [reply]
    assert found("status:delivered type:text channel:whatsapp") == [other, first]
    assert found("after:2000-01-01 before:2000-01-02") == []
    assert set(found(f"from:{RECIPIENT['whatsapp']}")) == {reply}

    bad = http.get(f"{SB}/messages", params={"q": "colour:red before:someday"})
    assert bad.status_code == 422
    reasons = [p["reason"] for p in bad.json()["invalid_parameters"]]
    assert any("unknown operator colour:" in r for r in reasons), reasons
    assert any("before: takes a date" in r for r in reasons), reasons

    latest = http.get(f"{SB}/messages/latest").json()
    assert latest["message_uuid"] == reply and latest["direction"] == "inbound"
    one = http.get(f"{SB}/messages/{first}").json()
    assert one["content"]["text"] == "first hello"
    assert [s["status"] for s in one["statuses"]][:2] == ["submitted", "delivered"]
    missing = http.get(f"{SB}/messages/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"


def test_webhook_attempts_signature_redeliver_and_resend(world: Any) -> None:
    server, setup, hooks, env = world
    http = setup.client
    uuid = _send(setup)
    _delivered(hooks, uuid)
    message = http.get(f"{SB}/messages/{uuid}").json()
    submitted, delivered = message["webhooks"][:2]

    detail = http.get(f"{SB}/webhooks/{delivered['id']}").json()
    attempt = detail["attempts"][0]
    sent_token = next(h for h in hooks.hooks if h.json.get("status") == "delivered"
                      and h.json["message_uuid"] == uuid).headers["Authorization"]  # fmt: skip
    shown = attempt["request_headers"]["Authorization"]
    assert shown.endswith("…(masked)") and sent_token not in json.dumps(detail)
    assert attempt["request_headers"]["Content-Type"] == "application/json"
    assert attempt["status_code"] == 200 and attempt["latency_ms"] >= 0
    signature = attempt["signature"]
    assert signature["verified"] is True and signature["reason"] is None
    assert signature["payload_hash_matches"] is True
    assert signature["claims"]["application_id"] == setup.application_id
    assert signature["claims"]["payload_hash"] == signature["body_sha256"]
    assert detail["previous"] == {"id": submitted["id"], "body": submitted["body"]}

    # A replaced secret: the attempt no longer verifies with the current one, and says why.
    replaced = cli("tenants", "signature-secret", setup.creds["api_key"], "--json", env=env)
    assert replaced.returncode == 0, replaced.stderr
    again = http.get(f"{SB}/webhooks/{delivered['id']}").json()["attempts"][0]["signature"]
    assert again["verified"] is False
    assert again["reason"] == MISMATCH
    new_secret = json.loads(replaced.stdout)["signature_secret"]

    count = len(hooks.hooks)
    redone = http.post(f"{SB}/webhooks/{delivered['id']}/redeliver")
    assert redone.status_code == 202 and redone.json() == {"id": delivered["id"],
                                                           "state": "pending"}  # fmt: skip
    seen = hooks.wait_for(lambda h: len(h) > count)
    assert seen[count].json == delivered["body"]

    edited = {**delivered["body"], "client_ref": "edited"}
    resent = http.post(f"{SB}/webhooks/{delivered['id']}/resend", json=edited)
    assert resent.status_code == 202, resent.text
    seen = hooks.wait_for(lambda h: any(x.json.get("client_ref") == "edited" for x in h))
    hook = next(x for x in seen if x.json.get("client_ref") == "edited")
    check_webhook(hook, new_secret, setup.creds["api_key"], setup.application_id)
    copy = http.get(f"{SB}/webhooks/{resent.json()['id']}").json()
    assert copy["body"] == edited and copy["url"] == delivered["url"]
    assert copy["previous"]["body"] == delivered["body"]

    not_json = http.post(f"{SB}/webhooks/{delivered['id']}/resend", content=b"[1,",
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert not_json.status_code == 422 and "valid JSON" in not_json.json()["detail"]
    assert http.get(f"{SB}/webhooks/999999999").status_code == 404

    # Another tenant sees none of it, and changes nothing.
    stranger = new_tenant(env)
    auth = (stranger["api_key"], stranger["api_secret"])
    import httpx2 as httpx

    with httpx.Client(base_url=server.url, auth=auth) as other:
        assert other.get(f"{SB}/webhooks/{delivered['id']}").status_code == 404
        assert other.post(f"{SB}/webhooks/{delivered['id']}/redeliver").status_code == 404
        assert other.post(f"{SB}/webhooks/{delivered['id']}/resend", json={}).status_code == 404
        assert other.get(f"{SB}/conversations").json() == {"conversations": []}
        assert other.get(f"{SB}/messages/latest").status_code == 404
    after = http.get(f"{SB}/messages/{uuid}").json()["webhooks"]
    assert len(after) == len(message["webhooks"]) + 1  # the one resend only


def test_the_same_on_the_command_line(world: Any, tmp_path: Any) -> None:
    _, setup, hooks, env = world
    uuid = _send(setup, text="cli hello")
    _delivered(hooks, uuid)
    found = cli("sandbox", "messages", "--search", "cli hello status:delivered", env=env)
    assert found.returncode == 0, found.stderr
    assert uuid in found.stdout and "1 messages" in found.stdout
    bad = cli("sandbox", "messages", "--search", "when:now", env=env)
    assert bad.returncode != 0 and "unknown operator when:" in bad.stderr
    assert "Traceback" not in bad.stderr

    delivered = setup.client.get(f"{SB}/messages/{uuid}").json()["webhooks"][1]
    shown = cli("webhooks", "show", delivered["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"webhook {delivered['id']}  delivered  status  {uuid}" in shown.stdout
    assert "200" in shown.stdout and "signature verifies" in shown.stdout
    assert "Bearer" not in shown.stdout  # the token is not printed

    body = tmp_path / "body.json"
    body.write_text(json.dumps({**delivered["body"], "client_ref": "from-cli"}))
    resent = cli("webhooks", "resend", delivered["id"], "--body", str(body), env=env)
    assert resent.returncode == 0, resent.stderr
    audit = cli("audit", "export", "--tenant", setup.creds["api_key"], env=env).stdout
    last = json.loads(audit.splitlines()[-1])
    assert (last["action"], last["actor"], last["outcome"]) == ("webhooks.resend", "cli", "ok")
    hooks.wait_for(lambda h: any(x.json.get("client_ref") == "from-cli" for x in h))
    missing = cli("webhooks", "resend", delivered["id"], "--body", str(tmp_path / "no"), env=env)
    assert missing.returncode != 0 and "cannot read --body" in missing.stderr
    not_json = tmp_path / "bad.json"
    not_json.write_text("[1,")
    refused = cli("webhooks", "resend", delivered["id"], "--body", str(not_json), env=env)
    assert refused.returncode != 0 and "valid JSON" in refused.stderr
