"""The application sends with Vonage's SDK; the statuses come back to its webhook, signed."""

from __future__ import annotations

from typing import Any

from app.sending import send_text

CUSTOMER = "447700900123"


def test_a_whatsapp_text_is_submitted_delivered_and_read(
    chatapp: Any, webhook_receiver: Any, whatsapp: Any
) -> None:
    uuid = send_text(whatsapp.messages, "whatsapp", CUSTOMER, whatsapp.account.external_id,
                     "Your order has shipped")  # fmt: skip
    submitted = webhook_receiver.wait_for_status(uuid, "submitted")
    delivered = webhook_receiver.wait_for_status(uuid, "delivered")
    assert submitted.path == delivered.path == "/status"
    assert submitted.verified and delivered.verified  # the tenant's signature secret
    assert submitted.json["client_ref"] == "example-app"
    assert submitted.json["to"] == CUSTOMER
    assert submitted.json["from"] == whatsapp.account.external_id

    chatapp.read(uuid)  # the customer reads it
    webhook_receiver.wait_for_status(uuid, "read")
    assert webhook_receiver.statuses(uuid) == ["submitted", "delivered", "read"]
    stored = chatapp.wait_for_status(uuid, "read")
    assert [s["status"] for s in stored["statuses"]] == ["submitted", "delivered", "read"]
    assert stored["content"]["text"] == "Your order has shipped"


def test_a_messenger_text_is_delivered(webhook_receiver: Any, messenger: Any) -> None:
    uuid = send_text(messenger.messages, "messenger", "user-42", messenger.account.external_id,
                     "Hello from the page")  # fmt: skip
    delivered = webhook_receiver.wait_for_status(uuid, "delivered")
    assert delivered.json["channel"] == "messenger"
    assert delivered.json["to"] == "user-42"


def test_an_unreachable_customer_is_reported_undeliverable(
    webhook_receiver: Any, whatsapp: Any
) -> None:
    """The sandbox's reserved recipients: a `to` ending 0001 is never delivered."""
    uuid = send_text(whatsapp.messages, "whatsapp", "447700900001",
                     whatsapp.account.external_id, "Are you there?")  # fmt: skip
    failed = webhook_receiver.wait_for_status(uuid, "undeliverable")
    assert failed.json["error"]["title"] == "1260"  # Vonage: the code as title
    assert failed.json["error"]["detail"].startswith("Destination unreachable")
    assert webhook_receiver.statuses(uuid) == ["submitted", "undeliverable"]
