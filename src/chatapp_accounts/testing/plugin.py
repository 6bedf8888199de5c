"""The pytest plugin installed with chatapp-accounts (entry point `pytest11`): fixtures that run
the real server in the test process and receive its signed webhooks (docs/testing-kit.md).

Lazy: loading the plugin imports nothing heavy and starts nothing; the server starts when a
test first asks for `chatapp_server` or `chatapp` (once per test process, so once per
pytest-xdist worker, in that worker's own temporary folder), a receiver when a test asks for
`webhook_receiver`.

A test that used `webhook_receiver` fails at its end when a webhook it received was unsigned
or did not verify, when an expected webhook never came, or when the server's outbox shows a
webhook to it that failed (with the attempts); `@pytest.mark.chatapp_allow_webhook_failures`
lets failed deliveries and bad signatures pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..domain.models import WebhookRecord
    from .kit import Chatapp
    from .receiver import WebhookReceiver
    from .server import ChatappServer

MARKER = "chatapp_allow_webhook_failures"
_SERVER = pytest.StashKey["ChatappServer"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test passes even when webhooks to its webhook_receiver failed or their "
        "signatures did not verify (chatapp-accounts' plugin)",
    )


@pytest.fixture(scope="session")
def chatapp_server_settings() -> dict[str, Any]:
    """Changes to the plugin server's settings (any field of chatapp_accounts.config.Settings);
    override this fixture in a conftest.py, e.g. to give up on failing webhooks sooner."""
    return {}


@pytest.fixture(scope="session")
def chatapp_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    chatapp_server_settings: dict[str, Any],
) -> Iterator[ChatappServer]:
    """The real server, in a thread, on an SQLite file of its own: `base_url` (HTTP),
    `https_base_url` / `api_host` (HTTPS), `ca_file` (the CA to trust for HTTPS)."""
    from .server import ChatappServer, test_settings

    folder = tmp_path_factory.mktemp("chatapp-accounts")  # per test process (xdist worker)
    server = ChatappServer(folder, test_settings(folder, **chatapp_server_settings)).start()
    request.config.stash[_SERVER] = server
    try:
        yield server
    finally:
        del request.config.stash[_SERVER]
        server.stop()


@pytest.fixture
def chatapp(chatapp_server: ChatappServer) -> Chatapp:
    """Factories (tenant, application, account) and the simulated customer (inbound, read,
    wait_for_status) on the plugin's server."""
    from .kit import Chatapp

    return Chatapp(chatapp_server)


@pytest.fixture
def webhook_receiver(request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    """An HTTP server on a loopback port recording every webhook, each signature checked with
    its tenant's signature secret (tenants made by `chatapp`) or `signature_secret` when set."""
    from .receiver import WebhookReceiver

    config = request.config

    def secret_for(api_key: str) -> str | None:
        server = config.stash.get(_SERVER, None)
        return server.signature_secrets.get(api_key) if server is not None else None

    receiver = WebhookReceiver.with_random_prefix(secret_for=secret_for)
    receiver.explain = lambda: _attempt_log(config, receiver)
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test that passed: its receiver's checks, a failure of the test itself."""
    result = yield
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    receiver = funcargs.get("webhook_receiver")
    if receiver is not None:
        problems = _problems(item, receiver)
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)
    return result


def _problems(item: pytest.Item, receiver: WebhookReceiver) -> list[str]:
    from .receiver import clock

    problems = [f"webhook_receiver: {unmet}" for unmet in receiver.check_expectations()]
    if item.get_closest_marker(MARKER) is not None:
        return problems
    for bad in receiver.bad_signatures():
        problems.append(
            f"webhook_receiver: the webhook {bad.summary()} received at "
            f"{clock(bad.received_at)}: {bad.verdict.describe()}"
        )
    server = item.config.stash.get(_SERVER, None)
    if server is not None:
        hooks = _failing(server, receiver)
        if hooks:
            problems.append(
                "webhook_receiver: webhooks to it failed (mark the test "
                f"@pytest.mark.{MARKER} if that is what it tests):\n" + _describe(hooks)
            )
    if problems:
        problems.append("received:\n" + receiver.describe_received())
    return problems


def _failing(server: ChatappServer, receiver: WebhookReceiver) -> list[WebhookRecord]:
    """The outbox's webhooks to this receiver that failed or had an attempt that did not
    deliver. When the receiver itself answered a failure (or never answered), waits for the
    server to record that attempt, at most the webhook timeout and a little more."""
    unanswered = any(d.answered is None or not 200 <= d.answered < 300 for d in receiver.received())
    deadline = time.monotonic() + server.settings.webhook_timeout_seconds + 3
    while True:
        hooks = [h for h in _outbox(server, receiver) if _failed(h)]
        if hooks or not unanswered or time.monotonic() > deadline:
            return hooks
        time.sleep(0.1)


def _outbox(server: ChatappServer, receiver: WebhookReceiver) -> list[WebhookRecord]:
    from ..domain import webhooks as webhook_cases

    hooks = server.call(lambda uow: webhook_cases.list_webhooks(uow, limit=1000))
    base = receiver.base_url
    return [h for h in hooks if h.url == base or h.url.startswith(base + "/")]


def _failed(hook: WebhookRecord) -> bool:
    return hook.state == "failed" or any(
        a.status_code is None or not 200 <= a.status_code < 300 for a in hook.attempts
    )


def _describe(hooks: list[WebhookRecord]) -> str:
    """Each webhook and its attempts, as `webhooks list` and the sandbox listing show them."""
    from ..presenters import webhook_json

    lines = []
    for hook in reversed(hooks):  # oldest first
        shown = webhook_json(hook)
        body = shown["body"]
        what = body.get("status") or body.get("message_type") or hook.kind
        lines.append(f"  webhook {shown['id']} {hook.kind} {what!r} of message "
                     f"{hook.message_uuid} to {hook.url}: {hook.state}, "
                     f"{len(hook.attempts)} attempt(s)")  # fmt: skip
        for number, attempt in enumerate(shown["attempts"], 1):
            answer = attempt["status_code"] if attempt["status_code"] is not None else "-"
            error = attempt["error"] or "-"
            later = attempt["next_attempt_at"]
            lines.append(f"    attempt {number} at {attempt['timestamp']}: {attempt['url']} "
                         f"status {answer}, error {error}"
                         + (f", next attempt at {later}" if later else ""))  # fmt: skip
    return "\n".join(lines)


def _attempt_log(config: pytest.Config, receiver: WebhookReceiver) -> str:
    server = config.stash.get(_SERVER, None)
    if server is None:
        return ""
    hooks = _outbox(server, receiver)
    return "the server's webhooks to this receiver:\n" + (_describe(hooks) or "  (none)")
