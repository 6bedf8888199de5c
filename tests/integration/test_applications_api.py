"""Application API v2: create, list, get, update, delete, in Vonage's own error shape."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from chatapp_accounts.security.keys import generate_rsa_key_pair
from tests.conftest import TenantCreds

from .helpers import APPS, EA, MESSAGES, assert_error, new_application, new_messenger


def test_create_without_key_returns_a_private_key_once(
    client: TestClient, alice: TenantCreds
) -> None:
    r = client.post(
        APPS,
        json={"name": "Demo", "capabilities": {**MESSAGES, "vbc": {}, "rtc": {}}},
        headers=alice.headers,
    )
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "Demo"
    assert body["capabilities"] == {**MESSAGES, "vbc": {}, "rtc": {}}
    assert body["privacy"] == {"improve_ai": True}
    assert body["_links"] == {"self": {"href": f"{APPS}/{body['id']}"}}
    private = serialization.load_pem_private_key(body["keys"]["private_key"].encode(), None)
    public = serialization.load_pem_public_key(body["keys"]["public_key"].encode())
    assert isinstance(private, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    got = client.get(f"{APPS}/{body['id']}", headers=alice.headers).json()
    assert got["keys"] == {"public_key": body["keys"]["public_key"]}
    assert {k: v for k, v in got.items() if k != "keys"} == {
        k: v for k, v in body.items() if k != "keys"
    }


def test_create_with_public_key_keeps_it(client: TestClient, alice: TenantCreds) -> None:
    _, public = generate_rsa_key_pair()
    r = client.post(APPS, json={"name": "k", "keys": {"public_key": public}}, headers=alice.headers)
    assert r.status_code == 201
    assert r.json()["keys"] == {"public_key": public}
    assert r.json()["capabilities"] == {}


def test_invalid_payload_uses_invalid_parameters(client: TestClient, alice: TenantCreds) -> None:
    r = client.post(
        APPS,
        json={
            "capabilities": {
                "voice": {
                    "webhooks": {
                        "answer_url": {
                            "address": "https://x",
                            "http_method": "PUT",
                            "connection_timeout": 5,
                        }
                    }
                },
                "messages": {"webhooks": {"inbound_url": {"address": "ftp://x"}}},
            },
            "keys": {"public_key": "not a key"},
        },
        headers=alice.headers,
    )
    body = assert_error(r, 400)
    assert body["type"] == "https://developer.nexmo.com/api-errors/application#payload-validation"
    assert body["title"] == "Bad Request"
    assert body["detail"] == "The request failed due to validation errors"
    assert {p["name"] for p in body["invalid_parameters"]} == {
        "name",
        "capabilities.voice.webhooks.answer_url.http_method",
        "capabilities.voice.webhooks.answer_url.connection_timeout",
        "capabilities.messages.webhooks.inbound_url.address",
        "keys.public_key",
    }
    assert client.get(APPS, headers=alice.headers).json()["total_items"] == 0


def test_list_pagination(client: TestClient, alice: TenantCreds) -> None:
    ids = [new_application(client, alice, name=f"a{i}")["id"] for i in range(3)]
    body = client.get(f"{APPS}?page_size=2&page=2", headers=alice.headers).json()
    assert (body["page"], body["page_size"], body["total_items"], body["total_pages"]) == (
        2,
        2,
        3,
        2,
    )
    assert [a["id"] for a in body["_embedded"]["applications"]] == ids[2:]
    assert "private_key" not in body["_embedded"]["applications"][0]["keys"]
    assert body["_links"]["prev"]["href"].endswith(f"{APPS}?page=1&page_size=2")
    bad = assert_error(client.get(f"{APPS}?page_size=1000", headers=alice.headers), 400)
    assert bad["invalid_parameters"] == [
        {"name": "page_size", "reason": "`page_size` must be between 1 and 100"}
    ]


def test_get_missing_is_404_in_vonage_shape(client: TestClient, alice: TenantCreds) -> None:
    body = assert_error(client.get(f"{APPS}/abc", headers=alice.headers), 404)
    assert body == {
        "type": "https://developer.nexmo.com/api-errors#not-found",
        "title": "Not Found",
        "detail": "ID 'abc' does not exist, or you do not have access",
        "instance": body["instance"],
    }


def test_put_updates_and_keeps_the_key(client: TestClient, alice: TenantCreds) -> None:
    app = new_application(client, alice)
    r = client.put(
        f"{APPS}/{app['id']}",
        json={"name": "renamed", "capabilities": MESSAGES, "privacy": {"improve_ai": False}},
        headers=alice.headers,
    )
    assert r.status_code == 200
    assert r.json()["name"] == "renamed"
    assert r.json()["keys"] == {"public_key": app["keys"]["public_key"]}
    assert r.json()["privacy"] == {"improve_ai": False}
    _, public = generate_rsa_key_pair()
    r = client.put(
        f"{APPS}/{app['id']}",
        json={"name": "k", "keys": {"public_key": public}},
        headers=alice.headers,
    )
    assert r.json()["keys"]["public_key"] == public
    assert_error(client.put(f"{APPS}/nope", json={"name": "x"}, headers=alice.headers), 404)


def test_put_dropping_messages_unlinks_accounts(client: TestClient, alice: TenantCreds) -> None:
    app = new_application(client, alice)
    new_messenger(client, alice, "42", applications=[app["id"]])
    client.put(
        f"{APPS}/{app['id']}",
        json={"name": "voice now", "capabilities": {"voice": {}}},
        headers=alice.headers,
    )
    assert client.get(f"{EA}/messenger/42", headers=alice.headers).json()["applications"] == []


def test_delete_unlinks_from_every_account(client: TestClient, alice: TenantCreds) -> None:
    app = new_application(client, alice)
    new_messenger(client, alice, "1", applications=[app["id"]])
    new_messenger(client, alice, "2", applications=[app["id"]])
    r = client.delete(f"{APPS}/{app['id']}", headers=alice.headers)
    assert r.status_code == 204
    for ext in ("1", "2"):
        assert (
            client.get(f"{EA}/messenger/{ext}", headers=alice.headers).json()["applications"] == []
        )
    assert_error(client.get(f"{APPS}/{app['id']}", headers=alice.headers), 404)
    assert_error(client.delete(f"{APPS}/{app['id']}", headers=alice.headers), 404)


def test_unauthorized_in_vonage_shape(client: TestClient) -> None:
    r = client.get(APPS)
    body = assert_error(r, 401)
    assert body["type"] == "https://developer.nexmo.com/api-errors#unauthorized"
    assert body["title"] == "Invalid credentials supplied"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = client.patch(f"{APPS}/x", json={})
    assert r.status_code == 405
    assert r.json()["type"] == "https://developer.nexmo.com/api-errors#wrong-verb"


def test_null_objects_are_400_not_absent(client: TestClient, alice: TenantCreds) -> None:
    """Found by Schemathesis: `"keys": null` was taken as absent and got 201."""
    for field in ("keys", "capabilities", "privacy"):
        r = client.post(APPS, json={"name": "n", field: None}, headers=alice.headers)
        body = assert_error(r, 400)
        assert body["invalid_parameters"] == [{"name": field, "reason": "must be an object"}]
    assert client.get(APPS, headers=alice.headers).json()["total_items"] == 0


def test_webhook_fields_are_checked_only_when_present(
    client: TestClient, alice: TenantCreds
) -> None:
    """Found by Schemathesis: `http_method: null` was accepted; `address` was wrongly required."""
    hooks = {"voice": {"webhooks": {"answer_url": {"http_method": None}}}}
    body = assert_error(
        client.post(APPS, json={"name": "n", "capabilities": hooks}, headers=alice.headers), 400
    )
    assert [p["name"] for p in body["invalid_parameters"]] == [
        "capabilities.voice.webhooks.answer_url.http_method"
    ]
    no_address = {"voice": {"webhooks": {"answer_url": {"http_method": "GET"}}}}
    r = client.post(APPS, json={"name": "n", "capabilities": no_address}, headers=alice.headers)
    assert r.status_code == 201
    assert r.json()["capabilities"] == no_address
