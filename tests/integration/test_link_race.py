"""Many concurrent links of different applications to one account: exactly one wins.

Each thread has its own connection and transaction, so the decision is the database's.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from chatapp_accounts.domain.accounts import (
    MessengerInput,
    create_messenger_account,
    get_account,
    link_application,
)
from chatapp_accounts.domain.applications import create_application
from chatapp_accounts.domain.errors import LinkConflict
from chatapp_accounts.domain.models import ApplicationInput, Provider
from chatapp_accounts.security.keys import generate_rsa_key_pair
from chatapp_accounts.security.service import SecurityService
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds

RACERS = 12


def test_concurrent_links_one_winner(uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds) -> None:
    creds, security = alice.credentials, SecurityService()
    _, public = generate_rsa_key_pair()  # one key for all: key generation is not under test
    create_messenger_account(
        uow_factory, security, creds, lambda: MessengerInput("race", "t", None, None)
    )
    app_ids = [
        create_application(
            uow_factory,
            security,
            creds,
            lambda i=i: ApplicationInput(f"a{i}", {"messages": {}}, public),  # type: ignore[misc]
        ).application.id
        for i in range(RACERS)
    ]
    barrier = threading.Barrier(RACERS)

    def attempt(app_id: str) -> str:
        barrier.wait()
        try:
            link_application(
                uow_factory, security, creds, Provider.MESSENGER, "race", lambda: app_id
            )
        except LinkConflict:
            return "409"
        return "200"

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(attempt, app_ids))
    assert sorted(results) == ["200"] + ["409"] * (RACERS - 1)
    winner = app_ids[results.index("200")]
    account = get_account(uow_factory, security, creds, Provider.MESSENGER, "race")
    assert account.application_id == winner
