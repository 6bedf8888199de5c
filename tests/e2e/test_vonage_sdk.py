"""Vonage's own Python SDK, unchanged, against the server over HTTPS.

The SDK hard-codes https://{api_host}; the test makes a throwaway CA, serves with a certificate
it signed, and trusts it the way any `requests` user would (REQUESTS_CA_BUNDLE).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from vonage_application import Application, ApplicationConfig, ListApplicationsFilter
from vonage_application.common import (
    ApplicationUrl,
    Capabilities,
    Messages,
    MessagesWebhooks,
)
from vonage_http_client import Auth, HttpClient, HttpClientOptions
from vonage_http_client.errors import AuthenticationError, HttpRequestError, NotFoundError

from chatapp_accounts.testing.certificates import make_certificates

from .server import Server, base_env, new_tenant, running_server

pytestmark = pytest.mark.e2e
EA = "/beta/chatapp-accounts"


@pytest.fixture
def https_server(db_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    ca, cert, key = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    env = base_env(**db_env)
    creds = new_tenant(env)
    with running_server(env, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server:
        yield server, creds
        # The SDK's clients are gone, but their pooled TLS connections live in reference cycles
        # until collected; closed now, the server does not wait on them when it stops.
        gc.collect()


def host_of(server: Server) -> str:
    return server.url.removeprefix("http://")


def lifecycle(http: HttpClient, auth_type: str, application_id: str, page: str) -> None:
    """Every External Accounts operation, through the SDK's own HttpClient."""
    host = http.api_host

    def call(method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        return getattr(http, method)(host, f"{EA}{path}", params, auth_type=auth_type)

    created = call("post", "/messenger", {"external_id": page, "access_token": "tok", "name": "P"})
    assert created["external_id"] == page and created["access_token"] == "tok"
    assert call("get", f"/messenger/{page}")["name"] == "P"
    assert call("patch", f"/messenger/{page}", {"name": "Q"})["name"] == "Q"
    listed = call("get", "", {"provider": "messenger", "page_size": 10})
    assert [a["external_id"] for a in listed["_embedded"]] == [page]
    linked = call("post", f"/messenger/{page}/applications", {"application": application_id})
    assert linked["applications"] == [application_id]
    assert call("delete", f"/messenger/{page}/applications/{application_id}") is None
    assert http.last_response is not None and http.last_response.status_code == 204
    assert call("delete", f"/messenger/{page}") is None
    with pytest.raises(NotFoundError):
        call("get", f"/messenger/{page}")


def test_sdk_lifecycle_with_jwt_then_basic(https_server: Any) -> None:
    server, creds = https_server
    options = HttpClientOptions(api_host=host_of(server), max_retries=0)
    basic = HttpClient(Auth(api_key=creds["api_key"], api_secret=creds["api_secret"]), options)
    apps = Application(basic)
    made = apps.create_application(
        ApplicationConfig(
            name="SDK app",
            capabilities=Capabilities(
                messages=Messages(
                    webhooks=MessagesWebhooks(
                        inbound_url=ApplicationUrl(
                            address="https://example.com/in", http_method="POST"
                        ),
                        status_url=ApplicationUrl(
                            address="https://example.com/st", http_method="POST"
                        ),
                    )
                )
            ),
        )
    )
    assert made.keys is not None
    private_key = made.keys.model_extra["private_key"]  # returned once, on create
    assert apps.get_application(made.id).name == "SDK app"
    listed, _ = apps.list_applications()
    assert [a.id for a in listed] == [made.id]

    jwt_client = HttpClient(Auth(application_id=made.id, private_key=private_key), options)
    lifecycle(jwt_client, "jwt", made.id, "sdk-page-jwt")
    lifecycle(basic, "basic", made.id, "sdk-page-basic")

    apps.delete_application(made.id)
    with pytest.raises(NotFoundError):
        apps.get_application(made.id)
    with pytest.raises(AuthenticationError):
        jwt_client.get(jwt_client.api_host, EA, None, auth_type="jwt")


def test_sdk_pages_an_empty_application_list_to_its_end(https_server: Any) -> None:
    """The SDK stops when `page == total_pages`: an empty list must be one empty page, or a
    loop over the pages never ends."""
    server, creds = https_server
    options = HttpClientOptions(api_host=host_of(server), max_retries=0)
    apps = Application(HttpClient(Auth(creds["api_key"], creds["api_secret"]), options))
    seen: list[Any] = []
    page: int | None = 1
    for _ in range(5):  # bounded: a server that always reports a next page fails, not hangs
        listed, page = apps.list_applications(ListApplicationsFilter(page=page))
        seen.extend(listed)
        if page is None:
            break
    assert (seen, page) == ([], None)


def test_sdk_sees_errors_as_vonage_sends_them(https_server: Any) -> None:
    server, creds = https_server
    options = HttpClientOptions(api_host=host_of(server), max_retries=0)
    basic = HttpClient(Auth(api_key=creds["api_key"], api_secret="wrong-secret-000"), options)
    with pytest.raises(AuthenticationError):
        Application(basic).list_applications()
    good = HttpClient(Auth(api_key=creds["api_key"], api_secret=creds["api_secret"]), options)
    with pytest.raises(HttpRequestError) as err:
        good.post(good.api_host, f"{EA}/messenger", {"external_id": "x"}, auth_type="basic")
    assert err.value.response.status_code == 400
    assert err.value.response.json()["invalid_params"][0]["name"] == "access_token"
