"""Webhooks that do not verify, and one that never came: each test fails at its end, saying
why; the marker lets a bad signature pass (not an unmet expectation: the test's own)."""

import urllib.request

import pytest


def _inbound(chatapp, webhook_receiver):
    tenant = chatapp.tenant()
    application = chatapp.application(tenant, webhook_receiver.url("/hooks"))
    account = chatapp.account(tenant, "whatsapp", application=application)
    return chatapp.inbound(account, "hello")


def test_wrong_secret(chatapp, webhook_receiver):
    webhook_receiver.signature_secret = "not-the-tenant-signature-secret-0123456789"
    uuid = _inbound(chatapp, webhook_receiver)
    webhook_receiver.wait_for_webhook(message_uuid=uuid)


@pytest.mark.chatapp_allow_webhook_failures
def test_wrong_secret_allowed(chatapp, webhook_receiver):
    webhook_receiver.signature_secret = "not-the-tenant-signature-secret-0123456789"
    uuid = _inbound(chatapp, webhook_receiver)
    webhook_receiver.wait_for_webhook(message_uuid=uuid)


def test_unsigned(chatapp, webhook_receiver):
    chatapp.tenant()  # the receiver checks with the tenants' secrets
    request = urllib.request.Request(
        webhook_receiver.url("/hooks/status"),
        method="POST",
        data=b'{"message_uuid": "m-1", "status": "delivered"}',
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200


def test_expected_never_came(chatapp, webhook_receiver):
    _inbound(chatapp, webhook_receiver)
    webhook_receiver.expect_webhook(status="delivered", message_uuid="never-sent", timeout=0.5)
