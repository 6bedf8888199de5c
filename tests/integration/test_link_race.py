"""Many concurrent links of different applications to one account: exactly one wins.

The links run as concurrent units of work on one event loop: on PostgreSQL each has its own
connection and transaction, so the decision is the database's; on SQLite each runs to its commit
in one step of the loop.
"""

from __future__ import annotations

import asyncio

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
from tests.conftest import TenantCreds, sync

RACERS = 12


def test_concurrent_links_one_winner(uow_factory: SqlUnitOfWorkFactory, alice: TenantCreds) -> None:
    creds, security = alice.credentials, SecurityService()
    _, public = generate_rsa_key_pair()  # one key for all: key generation is not under test

    async def race() -> tuple[list[str], list[str]]:
        await create_messenger_account(
            uow_factory, security, creds, lambda: MessengerInput("race", "t", None, None)
        )
        app_ids = [
            (
                await create_application(
                    uow_factory,
                    security,
                    creds,
                    lambda i=i: ApplicationInput(f"a{i}", {"messages": {}}, public),  # type: ignore[misc]
                )
            ).application.id
            for i in range(RACERS)
        ]

        async def attempt(app_id: str) -> str:
            try:
                await link_application(
                    uow_factory, security, creds, Provider.MESSENGER, "race", lambda: app_id
                )
            except LinkConflict:
                return "409"
            return "200"

        return app_ids, list(await asyncio.gather(*(attempt(a) for a in app_ids)))

    app_ids, results = sync(race())
    assert sorted(results) == ["200"] + ["409"] * (RACERS - 1)
    winner = app_ids[results.index("200")]
    account = sync(get_account(uow_factory, security, creds, Provider.MESSENGER, "race"))
    assert account.application_id == winner
