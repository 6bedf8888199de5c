"""The use cases on in-memory fakes (tests/unit/fakes.py): the rules of the External Accounts
and Application APIs, with no SQL, no HTTP and no cryptography."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chatapp_accounts.domain import accounts, applications, tenants
from chatapp_accounts.domain.accounts import MessengerInput
from chatapp_accounts.domain.errors import (
    AccessDenied,
    AccountAlreadyRegistered,
    AccountNotFound,
    ApplicationNotFound,
    CannotLink,
    CannotUnlink,
    InvalidInput,
    LinkConflict,
    NotAuthenticated,
    TenantNotFound,
    UnlinkConflict,
)
from chatapp_accounts.domain.models import (
    ApplicationInput,
    BasicCredentials,
    BearerCredentials,
    PageRequest,
    Provider,
)

from .fakes import FakeSecurity, FakeUnitOfWorkFactory

MESSAGES: dict[str, Any] = {"messages": {"webhooks": {}}}


class World:
    def __init__(self) -> None:
        self.uow = FakeUnitOfWorkFactory()
        self.security = FakeSecurity()

    def tenant(self) -> BasicCredentials:
        made = asyncio.run(tenants.create_tenant(self.uow, self.security))
        return BasicCredentials(made.api_key, made.api_secret)

    def run(self, use_case: Callable[..., Any], credentials: Any, *args: Any) -> Any:
        return asyncio.run(use_case(self.uow, self.security, credentials, *args))

    def app(self, who: BasicCredentials, capabilities: dict[str, Any] | None = None) -> str:
        made = self.run(
            applications.create_application,
            who,
            lambda: ApplicationInput("app", MESSAGES if capabilities is None else capabilities),
        )
        return str(made.application.id)

    def page(self, who: BasicCredentials, external_id: str, app: str | None = None) -> Any:
        return self.run(
            accounts.create_messenger_account,
            who,
            lambda: MessengerInput(external_id, "token", None, app),
        )


@pytest.fixture
def world() -> World:
    return World()


def test_basic_credentials_are_checked_against_the_hash(world: World) -> None:
    alice = world.tenant()
    assert world.uow.committed.tenants[alice.api_key].secret_hash == f"hash:{alice.api_secret}"
    for wrong in (
        BasicCredentials(alice.api_key, "nope"),
        BasicCredentials("unknown", alice.api_secret),
        BasicCredentials("x" * 40, alice.api_secret),  # longer than any api_key: not looked up
    ):
        with pytest.raises(NotAuthenticated):
            world.run(accounts.get_account, wrong, Provider.MESSENGER, "1")
    asyncio.run(tenants.revoke_tenant(world.uow, alice.api_key))
    with pytest.raises(NotAuthenticated):
        world.run(accounts.get_account, alice, Provider.MESSENGER, "1")
    with pytest.raises(TenantNotFound):
        asyncio.run(tenants.revoke_tenant(world.uow, "unknown"))


def test_bearer_acts_as_the_applications_owner(world: World) -> None:
    alice = world.tenant()
    app = world.app(alice)
    world.page(alice, "p1")
    token = BearerCredentials(f"app:{app}", "/beta/chatapp-accounts")
    account = world.run(accounts.get_account, token, Provider.MESSENGER, "p1")
    assert account.api_key == alice.api_key
    with pytest.raises(NotAuthenticated):
        world.run(
            accounts.get_account, BearerCredentials("app:nope", "/"), Provider.MESSENGER, "p1"
        )
    with pytest.raises(AccessDenied):
        world.run(
            accounts.get_account,
            BearerCredentials(f"app:{app}:deny", "/"),
            Provider.MESSENGER,
            "p1",
        )


def test_the_input_is_only_checked_once_the_caller_is_known(world: World) -> None:
    def refused() -> MessengerInput:
        raise InvalidInput.one("external_id", "bad")

    with pytest.raises(NotAuthenticated):
        world.run(accounts.create_messenger_account, BasicCredentials("k", "s"), refused)
    with pytest.raises(InvalidInput):
        world.run(accounts.create_messenger_account, world.tenant(), refused)


def test_create_refuses_a_page_registered_to_anyone(world: World) -> None:
    alice, bob = world.tenant(), world.tenant()
    world.page(alice, "p1")
    with pytest.raises(AccountAlreadyRegistered, match="to your account"):
        world.page(alice, "p1")
    with pytest.raises(AccountAlreadyRegistered, match="to another account"):
        world.page(bob, "p1")
    commits = world.uow.commits
    with pytest.raises(CannotLink):
        world.page(alice, "p2", app="no-such-app")
    assert world.uow.commits == commits  # nothing written
    assert (Provider.MESSENGER, "p2") not in world.uow.committed.accounts


def test_one_tenant_never_sees_anothers_account(world: World) -> None:
    alice, bob = world.tenant(), world.tenant()
    world.page(alice, "p1")
    with pytest.raises(AccountNotFound):
        world.run(accounts.get_account, bob, Provider.MESSENGER, "p1")
    with pytest.raises(AccountNotFound):
        world.run(accounts.delete_account, bob, Provider.MESSENGER, "p1")
    with pytest.raises(CannotLink):
        bobs = world.app(bob)
        world.run(accounts.link_application, bob, Provider.MESSENGER, "p1", lambda: bobs)
    assert world.run(accounts.get_account, alice, Provider.MESSENGER, "p1").external_id == "p1"


def test_link_rules(world: World) -> None:
    alice, bob = world.tenant(), world.tenant()
    world.page(alice, "p1")
    app1, app2 = world.app(alice), world.app(alice)
    no_messages, bobs = world.app(alice, {"voice": {}}), world.app(bob)

    def link(application_id: str, provider: Provider | None = Provider.MESSENGER) -> Any:
        return world.run(accounts.link_application, alice, provider, "p1", lambda: application_id)

    for refused in (no_messages, bobs, "missing", "x" * 101):
        with pytest.raises(CannotLink):
            link(refused)
    with pytest.raises(CannotLink):
        link(app1, provider=None)  # a provider outside the enum names no account
    assert link(app1).application_id == app1
    assert link(app1).application_id == app1  # the same again: nothing changes
    with pytest.raises(LinkConflict):
        link(app2)
    with pytest.raises(UnlinkConflict):
        world.run(accounts.unlink_application, alice, Provider.MESSENGER, "p1", app2)
    with pytest.raises(CannotUnlink):
        world.run(accounts.unlink_application, bob, Provider.MESSENGER, "p1", app1)
    world.run(accounts.unlink_application, alice, Provider.MESSENGER, "p1", app1)
    assert world.run(accounts.get_account, alice, Provider.MESSENGER, "p1").application_id is None


def test_patch_changes_what_is_given_and_applications_replace_the_link(world: World) -> None:
    alice = world.tenant()
    app1, app2 = world.app(alice), world.app(alice)
    world.page(alice, "p1", app=app1)

    def patch(change: MessengerInput) -> Any:
        return world.run(accounts.update_messenger_account, alice, "p1", lambda: change)

    renamed = patch(MessengerInput(name="New"))
    assert (renamed.name, renamed.access_token, renamed.application_id) == ("New", "token", app1)
    assert patch(MessengerInput(application_id=app2)).application_id == app2
    assert patch(MessengerInput(application_id=None)).application_id is None
    with pytest.raises(AccountNotFound):
        world.run(accounts.update_messenger_account, alice, "nope", lambda: MessengerInput())


def test_losing_messages_or_deleting_an_application_unlinks_it(world: World) -> None:
    alice = world.tenant()
    app1, app2 = world.app(alice), world.app(alice)
    world.page(alice, "p1", app=app1)
    world.page(alice, "p2", app=app2)
    world.run(applications.update_application, alice, app1, lambda: ApplicationInput("a", {}))
    world.run(applications.delete_application, alice, app2)
    for page in ("p1", "p2"):
        account = world.run(accounts.get_account, alice, Provider.MESSENGER, page)
        assert account.application_id is None
    with pytest.raises(ApplicationNotFound):
        world.run(applications.get_application, alice, app2)


def test_a_new_application_without_a_key_gets_a_pair_once(world: World) -> None:
    alice = world.tenant()
    made = world.run(applications.create_application, alice, lambda: ApplicationInput("a"))
    assert made.private_key is not None and made.application.public_key.startswith("public")
    assert made.application.privacy == {"improve_ai": True}
    given = world.run(
        applications.create_application, alice, lambda: ApplicationInput("b", None, "mine")
    )
    assert given.private_key is None and given.application.public_key == "mine"
    kept = world.run(
        applications.update_application, alice, given.application.id, lambda: ApplicationInput("c")
    )
    assert kept.public_key == "mine" and kept.name == "c"


def test_list_pages_and_an_empty_list(world: World) -> None:
    alice = world.tenant()
    for n in range(5):
        world.page(alice, f"p{n}")

    def listed(number: int, size: int) -> Any:
        return world.run(accounts.list_accounts, alice, lambda: PageRequest(number, size))

    page = listed(2, 2)
    assert [a.external_id for a in page.items] == ["p2", "p3"]
    assert (page.total_items, page.total_pages) == (5, 3)
    assert listed(9, 2).items == []
    empty = world.run(accounts.list_accounts, alice, lambda: PageRequest(1, 20, Provider.WHATSAPP))
    assert (empty.total_items, empty.total_pages, empty.items) == (0, 1, [])
    apps = world.run(applications.list_applications, alice, lambda: PageRequest(1, 10))
    assert (apps.total_items, apps.total_pages, apps.items) == (0, 1, [])


def test_provision_checks_its_values_and_the_tenant(world: World) -> None:
    alice = world.tenant()
    made = asyncio.run(
        accounts.provision_account(
            world.uow, api_key=alice.api_key, provider=Provider.WHATSAPP, external_id="447700900000"
        )
    )
    assert made.access_token is None
    with pytest.raises(InvalidInput) as err:
        asyncio.run(
            accounts.provision_account(
                world.uow, api_key=alice.api_key, provider=Provider.MESSENGER, external_id="m1"
            )
        )
    assert err.value.params[0].name == "access_token"
    assert err.value.params[0].reason == "a messenger account needs an access token"
    with pytest.raises(InvalidInput) as bad:
        asyncio.run(accounts.provision_account(
            world.uow, api_key=alice.api_key, provider=Provider.RCS, external_id="bad id",
            name="a\x85b",
        ))  # fmt: skip
    assert [p.name for p in bad.value.params] == ["external_id", "name"]
    with pytest.raises(TenantNotFound):
        asyncio.run(
            accounts.provision_account(
                world.uow, api_key="nobody", provider=Provider.RCS, external_id="r1"
            )
        )


def test_a_tenant_gets_a_signature_secret_and_a_new_one_on_demand(world: World) -> None:
    made = asyncio.run(tenants.create_tenant(world.uow, world.security))
    stored = world.uow.committed.signature_secrets
    assert stored[made.api_key] == made.signature_secret != made.api_secret
    fresh = asyncio.run(tenants.replace_signature_secret(world.uow, world.security, made.api_key))
    assert stored is not world.uow.committed.signature_secrets  # a new commit
    assert world.uow.committed.signature_secrets[made.api_key] == fresh != made.signature_secret
    for unknown in ("nobody", "x" * 40):
        with pytest.raises(TenantNotFound):
            asyncio.run(tenants.replace_signature_secret(world.uow, world.security, unknown))
