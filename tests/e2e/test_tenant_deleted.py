"""A tenant deleted while its messages are being sent (issue 24), end to end on both
databases: nothing breaks (no 500, no traceback, the sender and the dispatcher keep working),
its queued work (send jobs, pending webhooks) is dropped and counted
(`chatapp_work_dropped_total`), and another tenant's messages are all sent and their webhooks
received."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx2 as httpx
import pytest

from .messaging import SENDERS, check_webhook, receiver, text
from .server import cli, new_tenant

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"


def dropped(server_url: str) -> dict[str, float]:
    """chatapp_work_dropped_total by kind."""
    metrics = httpx.get(server_url + "/metrics").text
    return {kind: float(n) for kind, n in re.findall(
        r'^chatapp_work_dropped_total\{kind="(\w+)"\} (\S+)$', metrics, re.M)}  # fmt: skip


def test_a_tenant_deleted_while_its_messages_are_sent(world: Any) -> None:
    server, setup, hooks, env = world  # the tenant whose work must not be touched
    made = cli("admin-tokens", "create", "--name", "ops", "--scope", "tenants:write", "--json",
               env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    admin = {"Authorization": f"Bearer {json.loads(made.stdout)['token']}"}
    victim = new_tenant(env)
    with receiver() as its_hooks, httpx.Client(base_url=server.url, timeout=30,
                                               auth=(victim["api_key"], victim["api_secret"])
                                               ) as its:  # fmt: skip
        its_hooks.answer = _slow_503  # its webhooks are retried (pending), often in flight
        urls = {k: {"address": f"{its_hooks.url}/{k}", "http_method": "POST"}
                for k in ("inbound_url", "status_url")}  # fmt: skip
        app = its.post("/v2/applications", json={
            "name": "doomed", "capabilities": {"messages": {"webhooks": urls}}}).json()  # fmt: skip
        page = its.post(f"{EA}/messenger", json={"external_id": "page-doomed",
                        "access_token": "tok-x", "applications": [app["id"]]})  # fmt: skip
        assert page.status_code == 201, page.text

        def send(n: int) -> None:
            for _ in range(n):
                sent = its.post("/v1/messages", json={**text("messenger"), "from": "page-doomed"})
                assert sent.status_code == 202, sent.text

        send(3)  # sent at once: their status webhooks wait on retries
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _attempted(its):
            time.sleep(0.1)
        slow = cli("sandbox", "faults", "messenger", "page-doomed", "--delay", "1.5", env=env)
        assert slow.returncode == 0, slow.stderr
        send(12)  # in the sender's hands (1.5 s each) when the tenant goes

        ours: list[str] = []
        for channel in SENDERS:
            answer = setup.client.post("/v1/messages", json=text(channel))
            assert answer.status_code == 202, answer.text
            ours.append(answer.json()["message_uuid"])
        time.sleep(0.3)
        gone = httpx.delete(f"{server.url}/admin/v1/tenants/{victim['api_key']}", headers=admin)
        assert gone.status_code == 204, gone.text
        time.sleep(2)  # the tries and attempts in flight end, and find nothing to record
        for channel in SENDERS:  # after them: the sender and the dispatcher still work
            answer = setup.client.post("/v1/messages", json=text(channel))
            assert answer.status_code == 202, answer.text
            ours.append(answer.json()["message_uuid"])

        got = hooks.wait_for(lambda seen: len(seen) >= 2 * len(ours), timeout=30)
        secret, key = setup.creds["signature_secret"], setup.creds["api_key"]
        bodies = [check_webhook(h, secret, key, setup.application_id) for h in got]
        for uuid in ours:
            assert [b["status"] for b in bodies if b["message_uuid"] == uuid] == [
                "submitted", "delivered"]  # fmt: skip
        listed = setup.client.get("/sandbox/v1/messages", params={"page_size": 100}).json()
        assert listed["total_items"] == len(ours)
        assert {m["status"] for m in listed["_embedded"]["messages"]} == {"delivered"}

        counted = dropped(server.url)
        # Every one of its 12 slow sends, and its 6 status webhooks (3 messages' submitted and
        # delivered): queued, or in flight and dropped by the worker that held it.
        assert counted == {"send_job": 12, "webhook": 6}, counted
        attempts = len(its_hooks.hooks)
        time.sleep(1)
        assert len(its_hooks.hooks) == attempts  # nothing more of the tenant is sent
    problems = [line for line in server.output.splitlines()
                if "Traceback" in line or "failed; retrying" in line or " 500 " in line
                or "status=500" in line or "could not be recorded" in line]  # fmt: skip
    assert problems == [], server.output
    assert "deleted: dropped" in server.output  # a line says what was dropped
    assert "dropped: its message is gone" in server.output  # the sends in flight


def _slow_503(path: str, n: int) -> int:
    time.sleep(1)
    return 503


def _attempted(its: httpx.Client) -> bool:
    """Whether one of the tenant's webhooks was tried and waits for its retry."""
    listed = its.get("/sandbox/v1/messages").json()
    return any(
        w["attempts"] and w["state"] == "pending"
        for m in listed.get("_embedded", {}).get("messages", [])
        for w in m.get("webhooks", [])
    )
