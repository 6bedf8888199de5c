"""Google RBM's wire format (channels/rbm_wire.py): the exact AgentMessage for every RCS message
type and suggestion, the paths, the Google error model's classes (PROVIDERS.md 4c), and events in
the shapes RBM pushes, malformed ones skipped without raising."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp_accounts.channels.rbm_wire import (
    rbm_events,
    rbm_path,
    rbm_refusal,
    rbm_request,
    rbm_revoke_path,
    rbm_succeeded,
)
from chatapp_accounts.domain.models import InboundInput, OutboundMessage
from chatapp_accounts.domain.providers import (
    ProviderInbound,
    ProviderStatus,
    ProviderStatusName,
    Refusal,
)

AGENT = "vonage_demo_agent@rbm.goog"
UUID = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"


def rcs(message_type: str, **content: Any) -> OutboundMessage:
    return OutboundMessage("rcs", message_type, "447700900001", "Vonage", content)


# Requests -------------------------------------------------------------------------------------


def test_text_with_category_and_ttl() -> None:
    body = rbm_request(rcs("text", text="Hello", ttl=600, rcs={"category": "service-request"}))
    assert body == {
        "contentMessage": {"text": "Hello"},
        "messageTrafficType": "SERVICEREQUEST",
        "ttl": "600s",
    }


def test_the_default_ttl_is_vonage_s() -> None:
    assert rbm_request(rcs("text", text="Hello")) == {
        "contentMessage": {"text": "Hello"},
        "ttl": "259200s",
    }


@pytest.mark.parametrize(
    ("category", "traffic"),
    [
        ("authentication", "AUTHENTICATION"),
        ("transaction", "TRANSACTION"),
        ("promotion", "PROMOTION"),
        ("service-request", "SERVICEREQUEST"),
        ("acknowledgement", "ACKNOWLEDGEMENT"),
    ],
)
def test_categories(category: str, traffic: str) -> None:
    body = rbm_request(rcs("text", text="x", rcs={"category": category}))
    assert body["messageTrafficType"] == traffic


@pytest.mark.parametrize("kind", ["image", "video", "file"])
def test_media(kind: str) -> None:
    url = "https://example.com/media"
    assert rbm_request(rcs(kind, **{kind: {"url": url}}, ttl=20)) == {
        "contentMessage": {"contentInfo": {"fileUrl": url}},
        "ttl": "20s",
    }


SUGGESTIONS = [
    {"type": "reply", "text": "Yes", "postback_data": "question_1_yes"},
    {
        "type": "dial",
        "text": "Call us",
        "postback_data": "dial_1",
        "phone_number": "14155550100",
        "fallback_url": "https://example.com/contact",
    },
    {"type": "dial", "text": "Call", "postback_data": "dial_2", "phone_number": "+14155550100"},
    {
        "type": "view_location",
        "text": "Find us",
        "postback_data": "loc_1",
        "latitude": "37.7749",
        "longitude": "-122.4194",
        "pin_label": "Vonage",
    },
    {"type": "share_location", "text": "Share", "postback_data": "share_1"},
    {
        "type": "open_url",
        "text": "Open",
        "postback_data": "url_1",
        "url": "https://example.com",
        "description": "The Example website",
    },
    {
        "type": "open_url_in_webview",
        "text": "Open here",
        "postback_data": "url_2",
        "url": "https://example.com",
        "description": "The Example website",
        "view_mode": "HALF",
    },
    {
        "type": "create_calendar_event",
        "text": "Save",
        "postback_data": "cal_1",
        "start_time": "2023-01-01T10:00:00Z",
        "end_time": "2023-01-01T11:00:00Z",
        "title": "New Year Party",
        "description": "Join us",
        "fallback_url": "https://www.google.com/calendar",
    },
    {"type": "teleport", "text": "No such", "postback_data": "x"},
]
RBM_SUGGESTIONS = [
    {"reply": {"text": "Yes", "postbackData": "question_1_yes"}},
    {
        "action": {
            "text": "Call us",
            "postbackData": "dial_1",
            "fallbackUrl": "https://example.com/contact",
            "dialAction": {"phoneNumber": "+14155550100"},
        }
    },
    {
        "action": {
            "text": "Call",
            "postbackData": "dial_2",
            "dialAction": {"phoneNumber": "+14155550100"},
        }
    },
    {
        "action": {
            "text": "Find us",
            "postbackData": "loc_1",
            "viewLocationAction": {
                "latLong": {"latitude": 37.7749, "longitude": -122.4194},
                "label": "Vonage",
            },
        }
    },
    {"action": {"text": "Share", "postbackData": "share_1", "shareLocationAction": {}}},
    {
        "action": {
            "text": "Open",
            "postbackData": "url_1",
            "openUrlAction": {"url": "https://example.com", "description": "The Example website"},
        }
    },
    {
        "action": {
            "text": "Open here",
            "postbackData": "url_2",
            "openUrlAction": {
                "url": "https://example.com",
                "application": "WEBVIEW",
                "webviewViewMode": "HALF",
                "description": "The Example website",
            },
        }
    },
    {
        "action": {
            "text": "Save",
            "postbackData": "cal_1",
            "fallbackUrl": "https://www.google.com/calendar",
            "createCalendarEventAction": {
                "startTime": "2023-01-01T10:00:00Z",
                "endTime": "2023-01-01T11:00:00Z",
                "title": "New Year Party",
                "description": "Join us",
            },
        }
    },
]


def test_every_suggestion() -> None:
    body = rbm_request(rcs("text", text="Pick", suggestions=SUGGESTIONS))
    assert body["contentMessage"] == {"text": "Pick", "suggestions": RBM_SUGGESTIONS}


def test_a_coordinate_that_is_no_number_is_passed_as_given() -> None:
    odd = {**SUGGESTIONS[3], "latitude": "north", "longitude": "inf"}
    body = rbm_request(rcs("text", text="x", suggestions=[odd]))
    lat_long = body["contentMessage"]["suggestions"][0]["action"]["viewLocationAction"]["latLong"]
    assert lat_long == {"latitude": "north", "longitude": "inf"}


CARD = {
    "title": "Card Title",
    "text": "Some text",
    "media_url": "https://example.com/image.jpg",
    "media_description": "dropped",
    "media_height": "TALL",
    "thumbnail_url": "https://example.com/thumbnail.jpg",
    "media_force_refresh": True,
    "suggestions": [SUGGESTIONS[0]],
}
RBM_CARD = {
    "title": "Card Title",
    "description": "Some text",
    "media": {
        "height": "TALL",
        "contentInfo": {
            "fileUrl": "https://example.com/image.jpg",
            "thumbnailUrl": "https://example.com/thumbnail.jpg",
            "forceRefresh": True,
        },
    },
    "suggestions": [RBM_SUGGESTIONS[0]],
}


def test_card() -> None:
    options = {"category": "promotion", "card_orientation": "HORIZONTAL", "image_alignment": "LEFT"}
    body = rbm_request(rcs("card", card=CARD, rcs=options, ttl=3600))
    assert body == {
        "contentMessage": {
            "richCard": {
                "standaloneCard": {
                    "cardOrientation": "HORIZONTAL",
                    "thumbnailImageAlignment": "LEFT",
                    "cardContent": RBM_CARD,
                }
            }
        },
        "messageTrafficType": "PROMOTION",
        "ttl": "3600s",
    }


def test_a_minimal_card_is_vertical() -> None:
    card = {"title": "T", "text": "D", "media_url": "https://example.com/i.jpg"}
    body = rbm_request(rcs("card", card=card))
    assert body["contentMessage"] == {
        "richCard": {
            "standaloneCard": {
                "cardOrientation": "VERTICAL",
                "cardContent": {
                    "title": "T",
                    "description": "D",
                    "media": {"contentInfo": {"fileUrl": "https://example.com/i.jpg"}},
                },
            }
        }
    }


def test_carousel() -> None:
    second = {"title": "Two", "text": "2", "media_url": "https://example.com/2.jpg"}
    body = rbm_request(
        rcs(
            "carousel",
            carousel={"cards": [CARD, second]},
            suggestions=[SUGGESTIONS[4]],
            rcs={"card_width": "SMALL"},
        )
    )
    assert body["contentMessage"] == {
        "richCard": {
            "carouselCard": {
                "cardWidth": "SMALL",
                "cardContents": [
                    RBM_CARD,
                    {
                        "title": "Two",
                        "description": "2",
                        "media": {"contentInfo": {"fileUrl": "https://example.com/2.jpg"}},
                    },
                ],
            }
        },
        "suggestions": [RBM_SUGGESTIONS[4]],
    }
    default = rbm_request(rcs("carousel", carousel={"cards": [second, second]}))
    assert default["contentMessage"]["richCard"]["carouselCard"]["cardWidth"] == "MEDIUM"


def test_custom_is_the_agent_message() -> None:
    custom = {"contentMessage": {"text": "raw", "suggestions": []}}
    assert rbm_request(rcs("custom", custom=custom, rcs={"category": "transaction"})) == {
        "contentMessage": {"text": "raw", "suggestions": []},
        "messageTrafficType": "TRANSACTION",
        "ttl": "259200s",
    }
    own = {
        "contentMessage": {"text": "raw"},
        "expireTime": "2030-01-01T00:00:00Z",
        "messageTrafficType": "PROMOTION",
    }
    assert rbm_request(rcs("custom", custom=own, ttl=60, rcs={"category": "transaction"})) == own


def test_unknown_type_raises() -> None:
    with pytest.raises(ValueError):
        rbm_request(rcs("template", template={"name": "x"}))


def test_paths() -> None:
    assert rbm_path(rcs("text", text="x"), UUID, AGENT) == (
        "/v1/phones/+447700900001/agentMessages"
        "?messageId=aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab&agentId=vonage_demo_agent%40rbm.goog"
    )
    plus = OutboundMessage("rcs", "text", "+447700900001", "Vonage", {"text": "x"})
    assert rbm_path(plus, "a/b c", "agent&x=1").startswith("/v1/phones/+447700900001/agentMessages")
    assert rbm_path(plus, "a/b c", "agent&x=1").endswith(
        "?messageId=a%2Fb%20c&agentId=agent%26x%3D1"
    )
    assert rbm_path(rcs("text", text="x"), UUID, AGENT).count("+") == 1
    assert rbm_revoke_path("447700900001", UUID, AGENT) == (
        "/v1/phones/+447700900001/agentMessages/aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
        "?agentId=vonage_demo_agent%40rbm.goog"
    )
    assert (
        rbm_revoke_path("+44 77/00", "x/y", "a")
        == "/v1/phones/+44%2077%2F00/agentMessages/x%2Fy?agentId=a"
    )


# Answers --------------------------------------------------------------------------------------


def google(code: int, status: str, message: str = "Oops") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


AGENT_MESSAGE = json.dumps(
    {
        "name": f"phones/+447700900001/agentMessages/{UUID}",
        "sendTime": "2025-02-03T12:14:25.123456Z",
        "contentMessage": {"text": "Hello"},
    }
).encode()


def test_succeeded() -> None:
    assert rbm_succeeded(200, AGENT_MESSAGE)
    assert rbm_succeeded(409, google(409, "ALREADY_EXISTS", "Requested entity already exists"))
    assert not rbm_succeeded(409, google(409, "ABORTED"))
    assert not rbm_succeeded(409, b"<html>conflict</html>")
    assert not rbm_succeeded(200, b"")
    assert not rbm_succeeded(200, b"[]")
    assert not rbm_succeeded(200, google(200, "OK"))
    assert not rbm_succeeded(201, AGENT_MESSAGE)
    assert not rbm_succeeded(404, google(404, "NOT_FOUND"))


# (HTTP, Google status) -> (retry, throttled, Vonage code)
RBM_TABLE = [
    (404, "NOT_FOUND", (False, False, "1300")),
    (400, "INVALID_ARGUMENT", (False, False, "1020")),
    (400, "FAILED_PRECONDITION", (False, False, "1020")),
    (400, "OUT_OF_RANGE", (False, False, "1020")),
    (403, "PERMISSION_DENIED", (False, False, "1282")),
    (401, "UNAUTHENTICATED", (True, False, "1331")),
    (429, "RESOURCE_EXHAUSTED", (True, True, "1000")),
    (500, "INTERNAL", (True, False, "1331")),
    (503, "UNAVAILABLE", (True, False, "1331")),
    (504, "DEADLINE_EXCEEDED", (True, False, "1331")),
    (409, "ABORTED", (True, False, "1331")),
    (500, "UNKNOWN", (True, False, "1331")),
    # A status in no table: by the HTTP code.
    (404, "SOMETHING_NEW", (False, False, "1300")),
    (429, "", (True, True, "1000")),
    (502, "BAD_GATEWAY", (True, False, "1331")),
    (410, "GONE", (False, False, "1282")),
    (409, "ALREADY_EXISTS", (False, False, "1282")),
]


@pytest.mark.parametrize(("http", "status", "expected"), RBM_TABLE)
def test_google_error_table(http: int, status: str, expected: tuple[bool, bool, str]) -> None:
    refusal = rbm_refusal(http, google(http, status), None)
    assert (refusal.retry, refusal.throttled, refusal.code) == expected
    assert not refusal.pair
    assert refusal.detail == (
        f"RBM error {http} {status}: Oops" if status else f"RBM error {http}: Oops"
    )


def test_rbm_detail() -> None:
    body = google(404, "NOT_FOUND", "Requested entity was not found.")
    assert rbm_refusal(404, body, None) == Refusal(
        False, "1300", "RBM error 404 NOT_FOUND: Requested entity was not found."
    )
    token = "ya29.a0AfB_byC-secret-token-value"
    leaky = rbm_refusal(401, google(401, "UNAUTHENTICATED", f"bad {token}\n" + "y" * 300), None)
    assert token not in leaky.detail and "\n" not in leaky.detail
    assert leaky.detail.startswith("RBM error 401 UNAUTHENTICATED: bad <redacted> yyy")
    assert len(leaky.detail) == len("RBM error 401 UNAUTHENTICATED: ") + 200
    assert rbm_refusal(400, b'{"error": {"code": 400}}', None).detail == "RBM error 400"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            502,
            b"<html>Bad Gateway</html>",
            Refusal(True, "1331", "RBM answered HTTP 502 (not JSON)"),
        ),
        (503, b"", Refusal(True, "1331", "RBM answered HTTP 503 (not JSON)")),
        (401, b"", Refusal(True, "1331", "RBM answered HTTP 401 (not JSON)")),
        (429, b"", Refusal(True, "1000", "RBM answered HTTP 429 (not JSON)", throttled=True)),
        (404, b"<html>404</html>", Refusal(False, "1331", "RBM answered HTTP 404 (not JSON)")),
        (400, b'{"message": "x"}', Refusal(False, "1331", "RBM answered HTTP 400 (no error)")),
        # A 2xx that is no AgentMessage: tried again (the same messageId cannot send twice).
        (200, b"", Refusal(True, "1331", "RBM answered HTTP 200 (not JSON)")),
    ],
)
def test_answers_without_a_google_error(status: int, body: bytes, expected: Refusal) -> None:
    assert rbm_refusal(status, body, None) == expected


def test_retry_after() -> None:
    assert rbm_refusal(429, google(429, "RESOURCE_EXHAUSTED"), "30").after == 30.0
    assert rbm_refusal(503, b"", "Wed, 21 Oct 2015 07:28:00 GMT").after == 0.0
    assert rbm_refusal(503, b"", "later").after is None
    assert rbm_refusal(404, google(404, "NOT_FOUND"), "30").after is None


@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=300),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_refusal_never_raises(status: int, body: bytes, after: str | None) -> None:
    rbm_refusal(status, body, after)
    rbm_succeeded(status, body)


# Events ---------------------------------------------------------------------------------------


def push(publish_time: str = "2025-02-03T12:14:26.5Z") -> dict[str, Any]:
    return {
        "message": {
            "data": "eyJ...",
            "messageId": "2070443601311540",
            "publishTime": publish_time,
            "attributes": {},
        },
        "subscription": "projects/rbm-vonage/subscriptions/rbm-agent",
    }


def event(**fields: Any) -> dict[str, Any]:
    return {
        "senderPhoneNumber": "+447700900001",
        "eventId": "MxKbRxmvF4TlqMVA8Vcqg0XA",
        "sendTime": "2025-02-03T12:14:25.123456789Z",
        "agentId": AGENT,
        **fields,
    }


AT = 1738584865 + 0.123456789  # 2025-02-03T12:14:25.123456789Z


@pytest.mark.parametrize(("event_type", "status"), [("DELIVERED", "delivered"), ("READ", "read")])
def test_receipts(event_type: str, status: ProviderStatusName) -> None:
    events = rbm_events(push(), event(eventType=event_type, messageId=UUID))
    assert events == [
        ProviderStatus("rcs", AGENT, UUID, status, AT, event_id="MxKbRxmvF4TlqMVA8Vcqg0XA")
    ]


def test_ttl_expiration_revoked_is_rejected_1360() -> None:
    decoded = {
        "agentId": AGENT,
        "phoneNumber": "+447700900001",
        "eventType": "TTL_EXPIRATION_REVOKED",
        "messageId": UUID,
        "eventId": "ev-ttl",
        "sendTime": "2025-02-03T13:14:25Z",
    }
    [status] = rbm_events(push(), decoded)
    assert isinstance(status, ProviderStatus)
    assert (status.provider_id, status.status, status.error_code, status.event_id, status.at) == (
        UUID,
        "rejected",
        "1360",
        "ev-ttl",
        1738588465.0,
    )
    assert status.error_detail is not None and "TTL_EXPIRATION_REVOKED" in status.error_detail


@pytest.mark.parametrize(
    "event_type", ["IS_TYPING", "TTL_EXPIRATION_REVOKE_FAILED", "SOMETHING_NEW"]
)
def test_other_events_are_ignored(event_type: str) -> None:
    assert rbm_events(push(), event(eventType=event_type, messageId=UUID)) == []


def customer(message_type: str, content: dict[str, Any], provider_id: str = "MsgId-1") -> list[Any]:
    return [
        ProviderInbound(
            "rcs",
            AGENT,
            InboundInput("rcs", "", "447700900001", message_type, content),
            provider_id,
        )
    ]


@pytest.mark.parametrize(
    ("fields", "message_type", "content"),
    [
        ({"text": "Hello agent"}, "text", {"text": "Hello agent"}),
        (
            {
                "suggestionResponse": {
                    "postbackData": "question_1_yes",
                    "text": "Yes",
                    "type": "REPLY",
                }
            },
            "reply",
            {"reply": {"id": "question_1_yes", "title": "Yes"}},
        ),
        (
            {"suggestionResponse": {"postbackData": "q1", "text": "Yes"}},
            "reply",
            {"reply": {"id": "q1", "title": "Yes"}},
        ),
        (
            {"suggestionResponse": {"postbackData": "url_1", "text": "Open", "type": "ACTION"}},
            "button",
            {"button": {"payload": "url_1", "text": "Open"}},
        ),
        (
            {"location": {"latitude": 37.4220188, "longitude": -122.0844786}},
            "location",
            {"location": {"lat": 37.4220188, "long": -122.0844786}},
        ),
        (
            {
                "userFile": {
                    "thumbnail": {"mimeType": "image/jpeg", "fileUri": "https://rcs.example/t"},
                    "payload": {
                        "mimeType": "image/jpeg",
                        "fileSizeBytes": 1024,
                        "fileUri": "https://rcs.example/f",
                        "fileName": "photo.jpg",
                    },
                }
            },
            "image",
            {"image": {"url": "https://rcs.example/f", "name": "photo.jpg"}},
        ),
        (
            {
                "userFile": {
                    "payload": {"mimeType": "video/mp4", "fileUri": "https://rcs.example/v"}
                }
            },
            "video",
            {"video": {"url": "https://rcs.example/v"}},
        ),
        (
            {
                "userFile": {
                    "payload": {"mimeType": "audio/aac", "fileUri": "https://rcs.example/a"}
                }
            },
            "audio",
            {"audio": {"url": "https://rcs.example/a"}},
        ),
        (
            {
                "userFile": {
                    "payload": {"mimeType": "text/x-vCard", "fileUri": "https://rcs.example/c"}
                }
            },
            "vcard",
            {"vcard": {"url": "https://rcs.example/c"}},
        ),
        (
            {
                "userFile": {
                    "payload": {
                        "mimeType": "application/pdf",
                        "fileUri": "https://rcs.example/d",
                        "fileName": "a.pdf",
                    }
                }
            },
            "file",
            {"file": {"url": "https://rcs.example/d", "name": "a.pdf"}},
        ),
        (
            {"userFile": {"payload": {"fileUri": "https://rcs.example/d"}}},
            "file",
            {"file": {"url": "https://rcs.example/d"}},
        ),
    ],
)
def test_customer_messages(
    fields: dict[str, Any], message_type: str, content: dict[str, Any]
) -> None:
    assert rbm_events(push(), event(messageId="MsgId-1", **fields)) == customer(
        message_type, content
    )


def test_inbound_id_falls_back_to_the_event_id() -> None:
    assert rbm_events(push(), event(text="hi")) == customer(
        "text", {"text": "hi"}, "MxKbRxmvF4TlqMVA8Vcqg0XA"
    )


def test_times() -> None:
    def at(decoded: dict[str, Any], payload: Any = None) -> float:
        [only] = rbm_events(push() if payload is None else payload, decoded)
        assert isinstance(only, ProviderStatus)
        return only.at

    base = {"agentId": AGENT, "eventType": "READ", "messageId": UUID}
    assert at({**base, "sendTime": "2025-02-03T12:14:25Z"}) == 1738584865.0
    assert at({**base, "sendTime": "2025-02-03T14:14:25.5+02:00"}) == 1738584865.5
    assert at({**base, "sendTime": "2025-02-03T10:14:25-02:00"}) == 1738584865.0
    # No sendTime: the push's publishTime; neither: 0.0, which the caller reads as now.
    assert at(base) == 1738584866.5
    assert at({**base, "sendTime": "yesterday"}) == 1738584866.5
    assert at(base, {"message": {"data": "x"}}) == 0.0
    assert at(base, "junk") == 0.0
    assert at({**base, "sendTime": "2025-13-03T12:14:25Z"}, {}) == 0.0


@pytest.mark.parametrize(
    "decoded",
    [
        None,
        [],
        "text",
        {},
        {"eventType": "DELIVERED", "messageId": UUID},  # no agent
        {"agentId": AGENT, "eventType": "DELIVERED"},  # no message id
        {"agentId": AGENT, "eventType": ["READ"], "messageId": UUID},
        {"agentId": 5, "eventType": "READ", "messageId": UUID},
        {"agentId": AGENT, "messageId": "m", "text": "no sender"},
        {"agentId": AGENT, "senderPhoneNumber": "+1", "text": "no ids"},
        {"agentId": AGENT, "senderPhoneNumber": "+1", "messageId": "m", "text": 5},
        {
            "agentId": AGENT,
            "senderPhoneNumber": "+1",
            "messageId": "m",
            "suggestionResponse": {"text": "x"},
        },
        {
            "agentId": AGENT,
            "senderPhoneNumber": "+1",
            "messageId": "m",
            "userFile": {"payload": "x"},
        },
        {
            "agentId": AGENT,
            "senderPhoneNumber": "+1",
            "messageId": "m",
            "userFile": {"payload": {}},
        },
        {
            "agentId": AGENT,
            "senderPhoneNumber": "+1",
            "messageId": "m",
            "location": {"latitude": "1"},
        },
        {
            "agentId": AGENT,
            "senderPhoneNumber": "+1",
            "messageId": "m",
            "location": {"latitude": True, "longitude": 1},
        },
        {"agentId": AGENT, "senderPhoneNumber": "+1", "messageId": "m", "somethingNew": {}},
    ],
)
def test_malformed_events_are_skipped(decoded: Any) -> None:
    assert rbm_events(push(), decoded) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(
    json_values,
    st.sampled_from(
        ["text", "suggestionResponse", "userFile", "location", "eventType", "sendTime"]
    ),
    json_values,
)
def test_events_never_raise(payload: Any, key: str, value: Any) -> None:
    rbm_events(payload, value)
    rbm_events(payload, {"agentId": AGENT, "senderPhoneNumber": "+1", "messageId": "m", key: value})
    rbm_events(
        {"message": {"publishTime": value}},
        {"agentId": AGENT, "eventType": "READ", "messageId": "m"},
    )
