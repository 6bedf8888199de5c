"""A customer writes; the application's own handler verifies the webhook and answers."""

from __future__ import annotations

import asyncio
from typing import Any


def test_a_customer_message_reaches_the_handler_which_answers(
    chatapp: Any, webhook_receiver: Any, answering: Any
) -> None:
    account = answering.sender.account
    uuid = chatapp.inbound(account, "Where is my order?", from_="447700900555")
    [message] = answering.handler.wait_for_inbound(1)
    assert message["message_uuid"] == uuid
    assert message["text"] == "Where is my order?"
    assert message["from"] == "447700900555" and message["to"] == account.external_id
    assert answering.handler.refused == 0  # the signature verified

    [reply] = answering.handler.replies
    delivered = webhook_receiver.wait_for_status(reply, "delivered")
    assert delivered.json["to"] == "447700900555"
    stored = chatapp.wait_for_status(reply, "delivered")
    assert stored["content"]["text"] == "You said: Where is my order?"


def test_the_async_helpers(chatapp: Any, webhook_receiver: Any, whatsapp: Any) -> None:
    """inbound_async and the waits' async forms, from an event loop (as an async app's
    tests would call them)."""

    async def scenario() -> tuple[str, Any]:
        uuid = await chatapp.inbound_async(whatsapp.account, "Hi!", profile={"name": "Ann"})
        got = await webhook_receiver.wait_for_webhook_async(path="/inbound", message_uuid=uuid)
        return uuid, got

    uuid, got = asyncio.run(scenario())
    assert got.verified
    assert got.json["profile"] == {"name": "Ann"} and got.text == "Hi!"
    assert got.message_type == "text" and got.message_uuid == uuid
