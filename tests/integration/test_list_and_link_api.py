"""List (pagination, HAL links, provider filter), link and unlink, Viber/WhatsApp/RCS reads."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from chatapp_accounts.domain.accounts import provision_account
from chatapp_accounts.domain.models import Provider
from chatapp_accounts.storage.uow import SqlUnitOfWorkFactory
from tests.conftest import TenantCreds, sync

from .helpers import APPS, EA, assert_error, new_application, new_messenger

BASE = "https://accounts.example.test/beta/chatapp-accounts"


def provision(uow: SqlUnitOfWorkFactory, who: TenantCreds, provider: str, external_id: str) -> None:
    sync(
        provision_account(
            uow, api_key=who.api_key, provider=Provider(provider), external_id=external_id, name="n"
        )
    )


@pytest.mark.parametrize(
    ("provider", "path"), [("viber_service_msg", "viber_service_msg"), ("whatsapp", "whatsapp")]
)
def test_get_provisioned_accounts(
    client: TestClient,
    alice: TenantCreds,
    uow_factory: SqlUnitOfWorkFactory,
    provider: str,
    path: str,
) -> None:
    provision(uow_factory, alice, provider, "447700900001")
    r = client.get(f"{EA}/{path}/447700900001", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == {
        "external_id": "447700900001",
        "api_key": alice.api_key,
        "provider": provider,
        "name": "n",
        "applications": [],
    }
    # Same id under another provider is another account.
    assert_error(client.get(f"{EA}/messenger/447700900001", headers=alice.headers), 404)


def test_list_pages_links_and_totals(client: TestClient, alice: TenantCreds) -> None:
    for i in range(5):
        new_messenger(client, alice, f"p{i}")
    r = client.get(f"{EA}?page_size=2&page_number=2", headers=alice.headers)
    assert r.status_code == 200
    body = r.json()
    assert [a["external_id"] for a in body["_embedded"]] == ["p2", "p3"]
    assert (body["page_number"], body["page_size"], body["total_items"], body["total_pages"]) == (
        2,
        2,
        5,
        3,
    )
    assert body["_links"] == {
        "self": {"href": f"{BASE}?page_number=2&page_size=2"},
        "first": {"href": f"{BASE}?page_number=1&page_size=2"},
        "last": {"href": f"{BASE}?page_number=3&page_size=2"},
        "next": {"href": f"{BASE}?page_number=3&page_size=2"},
        "prev": {"href": f"{BASE}?page_number=1&page_size=2"},
    }
    # Walking every page yields each account once, in creation order.
    seen: list[str] = []
    for n in (1, 2, 3):
        page = client.get(f"{EA}/?page_size=2&page_number={n}", headers=alice.headers).json()
        seen += [a["external_id"] for a in page["_embedded"]]
    assert seen == [f"p{i}" for i in range(5)]


def test_list_defaults_and_past_the_end(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "only")
    body = client.get(EA, headers=alice.headers).json()
    assert (body["page_number"], body["page_size"], body["total_pages"]) == (1, 20, 1)
    assert "next" not in body["_links"] and "prev" not in body["_links"]
    past = client.get(f"{EA}?page_number=9", headers=alice.headers).json()
    assert past["_embedded"] == []
    assert past["total_items"] == 1


def test_an_empty_list_is_one_empty_page(client: TestClient, alice: TenantCreds) -> None:
    """In both APIs: `total_pages` 1, `last` is page 1, no `next`, so paging stops."""
    accounts = client.get(f"{EA}?page_size=5&provider=rcs", headers=alice.headers).json()
    assert (accounts["total_items"], accounts["total_pages"], accounts["_embedded"]) == (0, 1, [])
    assert accounts["_links"]["last"]["href"].endswith(
        f"{EA}?page_number=1&page_size=5&provider=rcs"
    )
    assert set(accounts["_links"]) == {"self", "first", "last"}
    apps = client.get(f"{APPS}?page_size=5", headers=alice.headers).json()
    assert (apps["total_items"], apps["total_pages"], apps["_embedded"]) == (
        0,
        1,
        {"applications": []},
    )
    assert apps["_links"]["last"]["href"].endswith(f"{APPS}?page=1&page_size=5")
    assert set(apps["_links"]) == {"self", "first", "last"}
    past = client.get(f"{EA}?page_number=2", headers=alice.headers).json()
    assert past["total_pages"] == 1 and past["_links"]["prev"]["href"].endswith(
        "page_number=1&page_size=20"
    )


@pytest.mark.parametrize(
    "value",
    [
        " 10",
        "+10",
        "-1",
        "\u0661",
        "1e2",
        "0x10",
        "10 ",
        "1_0",
        "",
        "9999999999",
        "99999999999999999999999",
    ],
)
def test_query_integers_are_ascii_digits_only(
    client: TestClient, alice: TenantCreds, value: str
) -> None:
    for url, name in ((EA, "page_size"), (EA, "page_number"), (APPS, "page"), (APPS, "page_size")):
        r = client.get(f"{url}?{name}={quote(value)}", headers=alice.headers)
        body = assert_error(r, 400)
        problems = body.get("invalid_params") or body.get("invalid_parameters")
        assert [p["name"] for p in problems] == [name], (url, name, problems)


def test_list_filters_by_provider_including_rcs(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    new_messenger(client, alice, "m1")
    provision(uow_factory, alice, "rcs", "agent1")
    provision(uow_factory, alice, "whatsapp", "4477")
    body = client.get(f"{EA}?provider=rcs", headers=alice.headers).json()
    assert [(a["provider"], a["external_id"]) for a in body["_embedded"]] == [("rcs", "agent1")]
    assert body["total_items"] == 1
    assert body["_links"]["self"]["href"] == f"{BASE}?page_number=1&page_size=20&provider=rcs"
    every = client.get(EA, headers=alice.headers).json()
    assert [a["provider"] for a in every["_embedded"]] == ["messenger", "rcs", "whatsapp"]
    assert "access_token" in every["_embedded"][0]
    assert "access_token" not in every["_embedded"][1]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("page_size=0", {"page_size"}),
        ("page_size=101", {"page_size"}),
        ("page_number=0", {"page_number"}),
        ("page_number=abc&page_size=1.5", {"page_number", "page_size"}),
        ("provider=telegram", {"provider"}),
    ],
)
def test_list_bad_parameters_are_400(
    client: TestClient, alice: TenantCreds, query: str, names: set[str]
) -> None:
    body = assert_error(client.get(f"{EA}?{query}", headers=alice.headers), 400)
    assert {p["name"] for p in body["invalid_params"]} == names


def test_list_auth_comes_before_its_query(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    # Basic auth and the count are one query: a bad query, a wrong secret or a missing header
    # still answer 401 first, and the count read with the credentials is the tenant's own.
    provision(uow_factory, alice, "whatsapp", "447700900001")
    bad, good = f"{EA}?page_size=0", f"{EA}?provider=whatsapp"
    wrong = {"Authorization": "Basic " + _b64(f"{alice.api_key}:not-the-secret")}
    unknown = {"Authorization": "Basic " + _b64("nobody00:whatever")}
    for headers in ({}, wrong, unknown):
        assert_error(client.get(bad, headers=headers), 401)
        assert_error(client.get(good, headers=headers), 401)
    assert_error(client.get(bad, headers=alice.headers), 400)
    body = client.get(good, headers=alice.headers).json()
    assert (body["total_items"], body["total_pages"]) == (1, 1)
    assert [a["external_id"] for a in body["_embedded"]] == ["447700900001"]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_link_then_same_again_then_conflict(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "42")
    first, second = new_application(client, alice), new_application(client, alice)
    url = f"{EA}/messenger/42/applications"
    r = client.post(url, json={"application": first["id"]}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["applications"] == [first["id"]]
    again = client.post(url, json={"application": first["id"]}, headers=alice.headers)
    assert again.status_code == 200
    assert again.json() == r.json()
    conflict = client.post(url, json={"application": second["id"]}, headers=alice.headers)
    body = assert_error(conflict, 409, detail="Unable to link application", type_suffix="#Conflict")
    assert body["title"] == "Application conflict"
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json()["applications"] == [
        first["id"]
    ]


def test_link_works_for_every_provider(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory
) -> None:
    app = new_application(client, alice)
    for provider in ("viber_service_msg", "whatsapp", "rcs"):
        provision(uow_factory, alice, provider, "id1")
        r = client.post(
            f"{EA}/{provider}/id1/applications",
            json={"application": app["id"]},
            headers=alice.headers,
        )
        assert r.status_code == 200, provider
        assert r.json()["provider"] == provider
        assert r.json()["applications"] == [app["id"]]


def test_link_refusals_are_403(client: TestClient, alice: TenantCreds, bob: TenantCreds) -> None:
    new_messenger(client, alice, "42")
    good = new_application(client, alice)
    voice = new_application(client, alice, messages=False)
    bobs = new_application(client, bob)
    cases = [
        ("messenger/42", voice["id"]),
        ("messenger/42", bobs["id"]),
        ("messenger/42", "no-such-app"),
        ("messenger/nope", good["id"]),
        ("telegram/42", good["id"]),
        ("whatsapp/42", good["id"]),
    ]
    for path, app_id in cases:
        r = client.post(
            f"{EA}/{path}/applications", json={"application": app_id}, headers=alice.headers
        )
        assert_error(r, 403, detail="Cannot link application", type_suffix="#Forbidden")
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json()["applications"] == []


def test_link_body_errors_are_400(client: TestClient, alice: TenantCreds) -> None:
    new_messenger(client, alice, "42")
    for payload in ({}, {"application": 3}, {"application": ""}, {"application": "x" * 101}):
        body = assert_error(
            client.post(f"{EA}/messenger/42/applications", json=payload, headers=alice.headers), 400
        )
        assert body["invalid_params"][0]["name"] == "application"


def test_unlink(client: TestClient, alice: TenantCreds, bob: TenantCreds) -> None:
    app = new_application(client, alice)
    other = new_application(client, alice)
    new_messenger(client, alice, "42", applications=[app["id"]])
    url = f"{EA}/messenger/42/applications"
    assert_error(
        client.delete(f"{url}/{other['id']}", headers=alice.headers),
        409,
        detail="Unable to unlink application",
    )
    assert_error(
        client.delete(f"{url}/{app['id']}", headers=bob.headers),
        403,
        detail="Cannot unlink application",
    )
    assert_error(
        client.delete(f"{EA}/telegram/42/applications/{app['id']}", headers=alice.headers),
        403,
        detail="Cannot unlink application",
    )
    r = client.delete(f"{url}/{app['id']}", headers=alice.headers)
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json()["applications"] == []
    assert_error(client.delete(f"{url}/{app['id']}", headers=alice.headers), 409)


def test_unknown_paths_are_404_in_the_api_shape(client: TestClient, alice: TenantCreds) -> None:
    assert_error(
        client.get(f"{EA}/telegram/1", headers=alice.headers), 404, type_suffix="#NotFound"
    )
    r = client.get(f"{EA}/messenger/a%2Fb", headers=alice.headers)
    assert r.status_code == 404


def test_served_spec_is_the_fixed_published_one(client: TestClient) -> None:
    r = client.get(f"{EA}/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["info"]["title"] == "External Accounts API"
    assert "anyOf" in spec["components"]["schemas"]["GetAllAccountResponse"]
    assert "rcs" in spec["paths"]["/"]["get"]["parameters"][0]["schema"]["enum"]


@pytest.mark.parametrize("provider", [None, "whatsapp"])
def test_every_page_from_either_end_walks_each_account_once(
    client: TestClient, alice: TenantCreds, uow_factory: SqlUnitOfWorkFactory, provider: str | None
) -> None:
    """The first pages read their rows directly, the next ones by their keys, and pages past the
    middle from the end: the walk must be the same whichever way each page is read."""
    for i in range(100):
        provision(uow_factory, alice, ["whatsapp", "rcs"][i % 3 == 0], f"w{i:02d}")
    query = f"&provider={provider}" if provider else ""
    expected = [f"w{i:02d}" for i in range(100) if provider is None or i % 3 != 0]
    for size in (1, 4, 5, 7, 100):
        seen: list[str] = []
        pages = -(-len(expected) // size)
        for n in range(1, pages + 2):
            body = client.get(
                f"{EA}?page_size={size}&page_number={n}{query}", headers=alice.headers
            ).json()
            assert body["total_items"] == len(expected)
            assert len(body["_embedded"]) == (
                min(size, len(expected) - (n - 1) * size) if n <= pages else 0
            )
            seen += [a["external_id"] for a in body["_embedded"]]
        assert seen == expected, size
