"""A receiver that never answers: the server's attempts time out, and the test fails at its end
with the attempts; the marker lets the same test pass. (Run by test_examples.py in a folder of
its own, as a user's test file: named case_*.py so the project's own run does not collect it.)"""

import pytest


def _inbound_to_a_silent_receiver(chatapp, webhook_receiver):
    webhook_receiver.respond(hang=True)
    tenant = chatapp.tenant()
    application = chatapp.application(tenant, webhook_receiver.url("/hooks"))
    account = chatapp.account(tenant, "rcs", application=application)
    uuid = chatapp.inbound(account, "anyone there?")
    got = webhook_receiver.wait_for_webhook(path="/hooks/inbound")
    assert got.message_uuid == uuid and got.answered is None


def test_never_answered(chatapp, webhook_receiver):
    _inbound_to_a_silent_receiver(chatapp, webhook_receiver)


@pytest.mark.chatapp_allow_webhook_failures
def test_never_answered_allowed(chatapp, webhook_receiver):
    _inbound_to_a_silent_receiver(chatapp, webhook_receiver)
