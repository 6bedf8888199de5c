"""Meta's Graph wire formats (channels/meta_wire.py): the exact bodies sent for every WhatsApp and
Messenger message type, each row of the error tables (PROVIDERS.md 1c, 2c), Retry-After, and
callbacks in the shapes Meta sends (real-shaped: metadata, contacts, conversation and pricing
blocks included), malformed parts skipped without raising."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapp_accounts.channels.meta_wire import (
    META_OBJECTS,
    graph_message_id,
    graph_refusal,
    messenger_request,
    meta_events,
    whatsapp_mark_read,
    whatsapp_request,
)
from chatapp_accounts.domain.models import InboundInput, OutboundMessage
from chatapp_accounts.domain.providers import (
    ProviderInbound,
    ProviderStatus,
    ProviderStatusName,
    Refusal,
    Watermark,
)
from chatapp_accounts.domain.rules import retry_after_seconds

WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
BASE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "447700900001"}


def message(
    channel: str, message_type: str, to: str = "447700900001", **content: Any
) -> OutboundMessage:
    return OutboundMessage(channel, message_type, to, "447700900000", content)


def wa(message_type: str, wamid: str | None = None, **content: Any) -> dict[str, Any]:
    return whatsapp_request(message("whatsapp", message_type, **content), wamid)


# WhatsApp requests ----------------------------------------------------------------------------


def test_whatsapp_text() -> None:
    assert wa("text", text="Hello") == {
        **BASE,
        "type": "text",
        "text": {"body": "Hello", "preview_url": False},
    }


def test_whatsapp_to_loses_its_plus_and_a_reply_gets_its_context() -> None:
    body = whatsapp_request(message("whatsapp", "text", to="+447700900001", text="Hi"), WAMID)
    assert body["to"] == "447700900001"
    assert body["context"] == {"message_id": WAMID}
    assert "context" not in wa("text", text="Hi")


def test_whatsapp_media() -> None:
    url = "https://example.com/m"
    assert wa("image", image={"url": url, "caption": "Look"}) == {
        **BASE,
        "type": "image",
        "image": {"link": url, "caption": "Look"},
    }
    assert wa("image", image={"url": url}) == {**BASE, "type": "image", "image": {"link": url}}
    assert wa("video", video={"url": url, "caption": "Watch"}) == {
        **BASE,
        "type": "video",
        "video": {"link": url, "caption": "Watch"},
    }
    # WhatsApp audio takes no caption.
    assert wa("audio", audio={"url": url, "caption": "x"}) == {
        **BASE,
        "type": "audio",
        "audio": {"link": url},
    }


def test_whatsapp_file_is_a_document() -> None:
    url = "https://example.com/f.pdf"
    assert wa("file", file={"url": url, "caption": "Invoice", "name": "invoice.pdf"}) == {
        **BASE,
        "type": "document",
        "document": {"link": url, "caption": "Invoice", "filename": "invoice.pdf"},
    }
    assert wa("file", file={"url": url}) == {**BASE, "type": "document", "document": {"link": url}}


def test_whatsapp_sticker_by_url_or_id() -> None:
    url = "https://example.com/s.webp"
    assert wa("sticker", sticker={"url": url}) == {
        **BASE,
        "type": "sticker",
        "sticker": {"link": url},
    }
    assert wa("sticker", sticker={"id": "aabb"}) == {
        **BASE,
        "type": "sticker",
        "sticker": {"id": "aabb"},
    }


def test_whatsapp_reaction_names_the_message_in_the_reaction() -> None:
    react = wa(
        "reaction",
        WAMID,
        reaction={"action": "react", "emoji": "😀"},
        context={"message_uuid": "u"},
    )
    assert react == {**BASE, "type": "reaction", "reaction": {"message_id": WAMID, "emoji": "😀"}}
    unreact = wa("reaction", WAMID, reaction={"action": "unreact"})
    assert unreact["reaction"] == {"message_id": WAMID, "emoji": ""}
    assert "context" not in unreact
    with pytest.raises(ValueError, match="wamid"):
        wa("reaction", None, reaction={"action": "react", "emoji": "😀"})


def test_whatsapp_template() -> None:
    body = wa(
        "template",
        template={
            "name": "9b6b4fcb_da19_4a26_8fe8_78074a91b584:verify",
            "parameters": ["Ana", "42"],
        },
        whatsapp={"policy": "deterministic", "locale": "pt_BR"},
    )
    assert body == {
        **BASE,
        "type": "template",
        "template": {
            "name": "verify",
            "language": {"policy": "deterministic", "code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "42"}],
                }
            ],
        },
    }
    plain = wa("template", template={"name": "hello_world"}, whatsapp={})
    assert plain["template"] == {
        "name": "hello_world",
        "language": {"policy": "deterministic", "code": "en_US"},
    }


def test_whatsapp_custom_is_merged_but_the_recipient_stays_ours() -> None:
    interactive = {"type": "button", "body": {"text": "Pick"}, "action": {"buttons": []}}
    body = wa(
        "custom",
        WAMID,
        custom={
            "type": "interactive",
            "interactive": interactive,
            "to": "999",
            "messaging_product": "x",
        },
    )
    assert body == {
        **BASE,
        "type": "interactive",
        "interactive": interactive,
        "context": {"message_id": WAMID},
    }


def test_whatsapp_unknown_type_raises() -> None:
    with pytest.raises(ValueError):
        wa("vcard", vcard={"url": "https://example.com/c.vcf"})


def test_whatsapp_mark_read() -> None:
    assert whatsapp_mark_read(WAMID) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
    }


# Messenger requests ---------------------------------------------------------------------------


def ms(message_type: str, **content: Any) -> dict[str, Any]:
    return messenger_request(message("messenger", message_type, to="7654321", **content))


def test_messenger_text_defaults_to_response() -> None:
    assert ms("text", text="Hi") == {
        "recipient": {"id": "7654321"},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi"},
    }


@pytest.mark.parametrize(
    ("category", "expected"),
    [("response", "RESPONSE"), ("update", "UPDATE"), ("message_tag", "MESSAGE_TAG")],
)
def test_messenger_category(category: str, expected: str) -> None:
    assert ms("text", text="Hi", messenger={"category": category})["messaging_type"] == expected


def test_messenger_tag() -> None:
    body = ms("text", text="Hi", messenger={"category": "message_tag", "tag": "ACCOUNT_UPDATE"})
    assert body["messaging_type"] == "MESSAGE_TAG"
    assert body["tag"] == "ACCOUNT_UPDATE"
    assert "tag" not in ms("text", text="Hi")


@pytest.mark.parametrize("kind", ["image", "audio", "video", "file"])
def test_messenger_media_are_attachments_and_lose_a_caption(kind: str) -> None:
    url = "https://example.com/media"
    assert ms(kind, **{kind: {"url": url, "caption": "dropped"}}) == {
        "recipient": {"id": "7654321"},
        "messaging_type": "RESPONSE",
        "message": {"attachment": {"type": kind, "payload": {"url": url, "is_reusable": False}}},
    }


def test_messenger_unknown_type_raises() -> None:
    with pytest.raises(ValueError):
        ms("template", template={"name": "x"})


# Answers --------------------------------------------------------------------------------------


def test_graph_message_id_of_a_success() -> None:
    whatsapp = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "447700900001", "wa_id": "447700900001"}],
        "messages": [{"id": WAMID, "message_status": "accepted"}],
    }
    assert graph_message_id(200, json.dumps(whatsapp).encode(), "whatsapp") == WAMID
    messenger = {"recipient_id": "7654321", "message_id": "m_AG5Hz2U"}
    assert graph_message_id(200, json.dumps(messenger).encode(), "messenger") == "m_AG5Hz2U"


@pytest.mark.parametrize(
    ("status", "body", "channel"),
    [
        (200, b"", "whatsapp"),
        (200, b"<html>ok</html>", "whatsapp"),
        (200, b"{}", "whatsapp"),
        (200, b'{"messages": []}', "whatsapp"),
        (200, b'{"messages": [{"id": ""}]}', "whatsapp"),
        (200, b'{"messages": [{"id": 5}]}', "whatsapp"),
        (200, b'{"messages": {"id": "x"}}', "whatsapp"),
        (200, b'{"recipient_id": "1"}', "messenger"),
        (200, b"[1]", "messenger"),
        (200, b'{"message_id": "m_1"}', "rcs"),
        (400, b'{"message_id": "m_1"}', "messenger"),
        (500, b'{"messages": [{"id": "x"}]}', "whatsapp"),
    ],
)
def test_graph_message_id_of_anything_else_is_none(status: int, body: bytes, channel: str) -> None:
    assert graph_message_id(status, body, channel) is None


def graph_error(code: int, subcode: int | None = None, message: str = "Oops") -> bytes:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return json.dumps({"error": error}).encode()


# (code, subcode, HTTP) -> (retry, throttled, pair, Vonage code)
TABLE = [
    # Messenger, PROVIDERS.md 1c
    (1200, 2018024, 500, (True, False, False, "1331")),
    (1200, None, 400, (True, False, False, "1331")),
    (2, None, 503, (True, False, False, "1331")),
    (2, None, 400, (True, False, False, "1331")),
    (4, None, 400, (True, True, False, "1000")),
    (613, None, 400, (True, True, False, "1000")),
    (10, 2018278, 400, (False, False, False, "1340")),
    (10, 2018065, 400, (False, False, False, "1340")),
    (100, 2018001, 400, (False, False, False, "1300")),
    (551, 1545041, 400, (False, False, False, "1260")),
    (551, None, 400, (False, False, False, "1260")),
    (190, None, 401, (False, False, False, "1370")),
    (190, 463, 400, (False, False, False, "1370")),
    (2018021, None, 400, (False, False, False, "1350")),
    (100, 2018021, 400, (False, False, False, "1350")),
    # WhatsApp, PROVIDERS.md 2c
    (130429, None, 429, (True, True, False, "1000")),
    (131056, None, 400, (True, True, True, "1000")),
    (131000, None, 500, (True, False, False, "1331")),
    (131016, None, 503, (True, False, False, "1331")),
    (131026, None, 400, (False, False, False, "1300")),
    (131047, None, 400, (False, False, False, "1340")),
    (132001, None, 404, (False, False, False, "1022")),
    (132000, None, 400, (False, False, False, "1022")),
    (131048, None, 400, (False, False, False, "1282")),
    (131049, None, 400, (False, False, False, "1282")),
    (100, None, 400, (False, False, False, "1020")),
    # Codes in no table: by the HTTP status.
    (131051, None, 400, (False, False, False, "1282")),
    (1, None, 500, (True, False, False, "1331")),
    (80007, None, 429, (True, True, False, "1000")),
    (10, None, 403, (False, False, False, "1282")),
]


@pytest.mark.parametrize(("code", "subcode", "http", "expected"), TABLE)
def test_graph_error_table(
    code: int, subcode: int | None, http: int, expected: tuple[bool, bool, bool, str]
) -> None:
    refusal = graph_refusal(http, graph_error(code, subcode), None)
    assert (refusal.retry, refusal.throttled, refusal.pair, refusal.code) == expected
    name = f"{code}/{subcode}" if subcode is not None else str(code)
    assert refusal.detail == f"Graph error {name}: Oops"


def test_graph_detail_is_meta_own_words() -> None:
    body = graph_error(100, 2018001, "(#100) No matching user found")
    assert graph_refusal(400, body, None) == Refusal(
        retry=False, code="1300", detail="Graph error 100/2018001: (#100) No matching user found"
    )
    # WhatsApp's error_data is not copied: code and message only.
    whatsapp = {
        "error": {
            "message": "(#131026) Message Undeliverable.",
            "type": "OAuthException",
            "code": 131026,
            "error_data": {"messaging_product": "whatsapp", "details": "secret-ish details"},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    refusal = graph_refusal(400, json.dumps(whatsapp).encode(), None)
    assert refusal.detail == "Graph error 131026: (#131026) Message Undeliverable."
    assert graph_refusal(400, b'{"error": {"code": 100}}', None).detail == "Graph error 100"
    assert graph_refusal(400, b'{"error": {"code": "131026"}}', None).code == "1300"


def test_graph_detail_is_clipped_and_never_holds_a_token() -> None:
    long = graph_refusal(400, graph_error(100, None, "x" * 500), None)
    assert long.detail == "Graph error 100: " + "x" * 200
    token = "EAAGm0PX4ZCpsBAKZAZBQ9XYZabcdefghijklmnop"
    leaky = graph_refusal(401, graph_error(190, None, f"Bad token {token}\r\nInjected: yes"), None)
    assert token not in leaky.detail and "\n" not in leaky.detail
    assert leaky.detail == "Graph error 190: Bad token <redacted> Injected: yes"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            502,
            b"<html><body>Bad Gateway</body></html>",
            Refusal(True, "1331", "Graph answered HTTP 502 (not JSON)"),
        ),
        (503, b"", Refusal(True, "1331", "Graph answered HTTP 503 (not JSON)")),
        (500, b'{"ok": true}', Refusal(True, "1331", "Graph answered HTTP 500 (no error code)")),
        (
            429,
            b"slow down",
            Refusal(True, "1000", "Graph answered HTTP 429 (not JSON)", throttled=True),
        ),
        (
            404,
            b"<html>Not Found</html>",
            Refusal(False, "1331", "Graph answered HTTP 404 (not JSON)"),
        ),
        (
            400,
            b'{"error": {"message": "no code"}}',
            Refusal(False, "1331", "Graph answered HTTP 400 (no error code)"),
        ),
        (
            400,
            b'{"error": "text"}',
            Refusal(False, "1331", "Graph answered HTTP 400 (no error code)"),
        ),
        (
            400,
            b'{"error": {"code": true}}',
            Refusal(False, "1331", "Graph answered HTTP 400 (no error code)"),
        ),
        # A 2xx without an id: permanent, for trying again could send it twice.
        (200, b"{}", Refusal(False, "1331", "Graph answered HTTP 200 (without a message id)")),
    ],
)
def test_graph_answers_without_a_graph_error(status: int, body: bytes, expected: Refusal) -> None:
    assert graph_refusal(status, body, None) == expected


def test_retry_after() -> None:
    assert graph_refusal(503, b"", "120").after == 120.0
    assert graph_refusal(400, graph_error(4), " 7 ").after == 7.0
    assert graph_refusal(503, b"", "soon").after is None
    assert graph_refusal(503, b"", "-5").after is None
    assert graph_refusal(503, b"", "1.5").after is None
    assert graph_refusal(503, b"", "").after is None
    assert graph_refusal(503, b"", None).after is None
    # A permanent refusal has no wait.
    assert graph_refusal(400, graph_error(131026), "120").after is None
    # An HTTP-date: seconds from now; one already past is 0.
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412450.0) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 -0000", now=1445412450.0) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412510.0) == 0.0
    assert graph_refusal(503, b"", "Wed, 21 Oct 2015 07:28:00 GMT").after == 0.0
    future = graph_refusal(503, b"", formatdate(2e9, usegmt=True)).after
    assert future is not None and future > 0
    assert retry_after_seconds("Wed, 32 Foo 2015 99:99:99 GMT") is None


@given(
    st.integers(min_value=100, max_value=599),
    st.binary(max_size=300),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_graph_refusal_never_raises_on_bytes(status: int, body: bytes, after: str | None) -> None:
    refusal = graph_refusal(status, body, after)
    assert refusal.code in (
        "1000",
        "1020",
        "1022",
        "1260",
        "1282",
        "1300",
        "1331",
        "1340",
        "1350",
        "1370",
    )
    assert len(refusal.detail) < 260


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(st.integers(min_value=100, max_value=599), json_values)
def test_graph_refusal_never_raises_on_json(status: int, value: Any) -> None:
    body = json.dumps({"error": value}).encode()
    graph_refusal(status, body, None)
    graph_message_id(status, json.dumps(value).encode(), "whatsapp")
    graph_message_id(status, json.dumps(value).encode(), "messenger")


# WhatsApp callbacks ---------------------------------------------------------------------------

PHONE_NUMBER_ID = "106540352242922"


def wa_callback(**value: Any) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def wa_status(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": WAMID,
        "status": status,
        "timestamp": "1750030073",
        "recipient_id": "16505551234",
        "conversation": {"id": "cd2e9d8f6f1f4b3a", "origin": {"type": "utility"}},
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"},
        **extra,
    }


@pytest.mark.parametrize("status", ["sent", "delivered", "read"])
def test_whatsapp_statuses(status: ProviderStatusName) -> None:
    assert meta_events(wa_callback(statuses=[wa_status(status)])) == [
        ProviderStatus("whatsapp", PHONE_NUMBER_ID, WAMID, status, 1750030073.0)
    ]


@pytest.mark.parametrize(
    ("code", "title", "vonage"),
    [
        (131026, "Message undeliverable", "1300"),
        (131047, "Re-engagement message", "1340"),
        (132001, "Template name does not exist in the translation", "1022"),
        (
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "1282",
        ),
        (130429, "Rate limit hit", "1000"),
        (131056, "Pair rate limit hit", "1000"),
        (131000, "Something went wrong", "1330"),
        (135000, "Generic user error", "1330"),
    ],
)
def test_whatsapp_failed_is_rejected_with_the_mapped_code(
    code: int, title: str, vonage: str
) -> None:
    failed = wa_status(
        "failed",
        errors=[
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": "Details."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ],
    )
    assert meta_events(wa_callback(statuses=[failed])) == [
        ProviderStatus(
            "whatsapp",
            PHONE_NUMBER_ID,
            WAMID,
            "rejected",
            1750030073.0,
            vonage,
            f"Graph error {code}: {title}",
        )
    ]


def test_whatsapp_failed_detail_falls_back_to_the_message_and_to_no_error() -> None:
    only_message = wa_status("failed", errors=[{"code": 131026, "message": "Undeliverable"}])
    no_error = wa_status("failed")
    events = meta_events(wa_callback(statuses=[only_message, no_error]))
    assert [(e.error_code, e.error_detail) for e in events if isinstance(e, ProviderStatus)] == [
        ("1300", "Graph error 131026: Undeliverable"),
        ("1330", "Graph status failed (no error given)"),
    ]


def test_whatsapp_statuses_skipped() -> None:
    statuses = [
        wa_status("played"),
        wa_status("deleted"),
        {**wa_status("read"), "timestamp": "yesterday"},
        {**wa_status("read"), "timestamp": None},
        {**wa_status("read"), "id": 5},
        {k: v for k, v in wa_status("read").items() if k != "id"},
        {**wa_status("read"), "status": ["read"]},
        "not an object",
        {**wa_status("delivered"), "timestamp": 1750030074},  # a number is fine
    ]
    events = meta_events(wa_callback(statuses=statuses))
    assert events == [ProviderStatus("whatsapp", PHONE_NUMBER_ID, WAMID, "delivered", 1750030074.0)]


def wa_inbound(message: dict[str, Any], name: str = "Kerry Fisher") -> dict[str, Any]:
    common = {"from": "16315551181", "id": "wamid.ABGGFlA5Fpa", "timestamp": "1504902988"}
    return wa_callback(
        contacts=[{"profile": {"name": name}, "wa_id": "16315551181"}],
        messages=[{**common, **message}],
    )


def inbound(
    message_type: str, content: dict[str, Any], context: str | None = None
) -> ProviderInbound:
    return ProviderInbound(
        "whatsapp",
        PHONE_NUMBER_ID,
        InboundInput(
            "whatsapp", "", "16315551181", message_type, content, profile_name="Kerry Fisher"
        ),
        "wamid.ABGGFlA5Fpa",
        context,
    )


def test_whatsapp_inbound_text_with_profile_and_context() -> None:
    callback = wa_inbound(
        {
            "type": "text",
            "text": {"body": "this is a text message"},
            "context": {"from": "15550783881", "id": WAMID},
        }
    )
    assert meta_events(callback) == [inbound("text", {"text": "this is a text message"}, WAMID)]


@pytest.mark.parametrize(
    ("message", "message_type", "content"),
    [
        (
            {
                "type": "image",
                "image": {
                    "caption": "This is a caption",
                    "mime_type": "image/jpeg",
                    "sha256": "81d3bd8a",
                    "id": "1479537139650973",
                },
            },
            "image",
            {"image": {"url": "1479537139650973", "caption": "This is a caption"}},
        ),
        (
            {
                "type": "image",
                "image": {"id": "1479537139650973", "url": "https://lookaside.fbsbx.com/x"},
            },
            "image",
            {"image": {"url": "https://lookaside.fbsbx.com/x"}},
        ),
        (
            {"type": "video", "video": {"id": "v1", "link": "https://example.com/v.mp4"}},
            "video",
            {"video": {"url": "https://example.com/v.mp4"}},
        ),
        (
            {
                "type": "audio",
                "audio": {"id": "a1", "mime_type": "audio/ogg; codecs=opus", "voice": True},
            },
            "audio",
            {"audio": {"url": "a1"}},
        ),
        (
            {
                "type": "document",
                "document": {
                    "id": "d1",
                    "filename": "invoice.pdf",
                    "caption": "Mine",
                    "mime_type": "application/pdf",
                },
            },
            "file",
            {"file": {"url": "d1", "name": "invoice.pdf", "caption": "Mine"}},
        ),
        (
            {
                "type": "sticker",
                "sticker": {"id": "s1", "animated": False, "mime_type": "image/webp"},
            },
            "sticker",
            {"sticker": {"url": "s1"}},
        ),
        (
            {
                "type": "location",
                "location": {
                    "latitude": 40.34772,
                    "longitude": -74.18847,
                    "name": "Vonage",
                    "address": "23 Main St",
                },
            },
            "location",
            {
                "location": {
                    "lat": 40.34772,
                    "long": -74.18847,
                    "name": "Vonage",
                    "address": "23 Main St",
                }
            },
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "yes-1", "title": "Yes"},
                },
            },
            "reply",
            {"reply": {"id": "yes-1", "title": "Yes"}},
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {
                        "id": "9am",
                        "title": "9am",
                        "description": "Select 9am appointment time",
                    },
                },
            },
            "reply",
            {"reply": {"id": "9am", "title": "9am", "description": "Select 9am appointment time"}},
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "nfm_reply",
                    "nfm_reply": {
                        "response_json": '{"flow_token": "t-1", "choice": "a"}',
                        "body": "Sent",
                        "name": "flow",
                    },
                },
            },
            "button",
            {
                "button": {
                    "payload": {"flow_token": "t-1", "choice": "a"},
                    "subtype": "flow",
                    "text": "Sent",
                }
            },
        ),
        (
            {"type": "button", "button": {"payload": "stop-promos", "text": "Stop promotions"}},
            "reply",
            {"reply": {"id": "stop-promos", "title": "Stop promotions"}},
        ),
        (
            {
                "type": "order",
                "order": {
                    "catalog_id": "2806150799683508",
                    "text": "hi",
                    "product_items": [
                        {
                            "product_retailer_id": "pk1v7rudbg",
                            "quantity": 1,
                            "item_price": 9.99,
                            "currency": "USD",
                        }
                    ],
                },
            },
            "order",
            {
                "order": {
                    "catalog_id": "2806150799683508",
                    "product_items": [
                        {
                            "product_retailer_id": "pk1v7rudbg",
                            "quantity": "1",
                            "item_price": "9.99",
                            "currency": "USD",
                        }
                    ],
                }
            },
        ),
        (
            {
                "type": "contacts",
                "contacts": [
                    {
                        "name": {"formatted_name": "Bob Smith", "first_name": "Bob"},
                        "phones": [{"phone": "+1 555", "wa_id": "1555", "type": "HOME"}],
                    }
                ],
            },
            "contacts",
            {
                "contacts": [
                    {
                        "name": {"formatted_name": "Bob Smith", "first_name": "Bob"},
                        "phones": [{"phone": "+1 555", "wa_id": "1555", "type": "HOME"}],
                    }
                ]
            },
        ),
        (
            {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
            "unsupported",
            {},
        ),
        ({"type": "system", "system": {"body": "changed number"}}, "unsupported", {}),
        (
            {"type": "interactive", "interactive": {"type": "call_permission_reply"}},
            "unsupported",
            {},
        ),
    ],
)
def test_whatsapp_inbound_types(
    message: dict[str, Any], message_type: str, content: dict[str, Any]
) -> None:
    assert meta_events(wa_inbound(message)) == [inbound(message_type, content)]


def test_whatsapp_inbound_reaction_names_its_message() -> None:
    react = wa_inbound({"type": "reaction", "reaction": {"message_id": WAMID, "emoji": "❤️"}})
    assert meta_events(react) == [
        inbound("reaction", {"reaction": {"action": "react", "emoji": "❤️"}}, WAMID)
    ]
    unreact = wa_inbound({"type": "reaction", "reaction": {"message_id": WAMID}})
    assert meta_events(unreact) == [inbound("reaction", {"reaction": {"action": "unreact"}}, WAMID)]


def test_whatsapp_inbound_sender_and_profile() -> None:
    callback = wa_callback(
        contacts=[
            {"profile": {"name": "Ana"}, "wa_id": "447700900002"},
            {"profile": {"name": "Bo"}, "wa_id": "447700900003"},
        ],
        messages=[
            {"from": "+447700900003", "id": "wamid.2", "type": "text", "text": {"body": "x"}},
            {"from": "447700900009", "id": "wamid.3", "type": "text", "text": {"body": "y"}},
        ],
    )
    first, second = meta_events(callback)
    assert isinstance(first, ProviderInbound) and isinstance(second, ProviderInbound)
    assert (first.message.sender, first.message.profile_name, first.message.to) == (
        "447700900003",
        "Bo",
        "",
    )
    assert (second.message.sender, second.message.profile_name) == ("447700900009", None)


def test_whatsapp_malformed_parts_are_skipped() -> None:
    good = {"from": "16315551181", "id": "wamid.ok", "type": "text", "text": {"body": "ok"}}
    messages = [
        {"from": "16315551181", "type": "text", "text": {"body": "no id"}},
        {"id": "wamid.x", "type": "text", "text": {"body": "no from"}},
        {"from": "16315551181", "id": "wamid.x", "type": "text", "text": "flat"},
        {"from": "16315551181", "id": "wamid.x", "type": "image", "image": {"caption": "no ref"}},
        {"from": "16315551181", "id": "wamid.x", "type": "location", "location": {"latitude": "1"}},
        {
            "from": "16315551181",
            "id": "wamid.x",
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "x"}},
        },
        {
            "from": "16315551181",
            "id": "wamid.x",
            "type": "interactive",
            "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "not json"}},
        },
        {"from": "16315551181", "id": "wamid.x", "type": "button", "button": {}},
        {"from": "16315551181", "id": "wamid.x", "type": "order", "order": {}},
        {"from": "16315551181", "id": "wamid.x", "type": "contacts"},
        None,
        good,
    ]
    value_errors = [{"code": 131000, "title": "Something went wrong"}]
    events = meta_events(wa_callback(messages=messages, errors=value_errors))
    assert [e.provider_id for e in events if isinstance(e, ProviderInbound)] == ["wamid.ok"]


def test_whatsapp_changes_without_an_account_or_of_another_field_are_skipped() -> None:
    no_metadata = wa_callback(statuses=[wa_status("read")])
    del no_metadata["entry"][0]["changes"][0]["value"]["metadata"]
    assert meta_events(no_metadata) == []
    other_field = wa_callback(statuses=[wa_status("read")])
    other_field["entry"][0]["changes"][0]["field"] = "message_template_status_update"
    assert meta_events(other_field) == []
    numeric = wa_callback(statuses=[wa_status("read")])
    numeric["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = 106540352242922
    assert [e.account for e in meta_events(numeric) if isinstance(e, ProviderStatus)] == [
        PHONE_NUMBER_ID
    ]


# Messenger callbacks --------------------------------------------------------------------------

PAGE = "1122334455"
PSID = "6677889900"


def page_callback(*events: Any) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [{"id": PAGE, "time": 1458692752478, "messaging": list(events)}],
    }


def page_event(**event: Any) -> dict[str, Any]:
    return {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1458692752478, **event}


def messenger_inbound(
    message_type: str, content: dict[str, Any], mid: str = "m_1", replied: str | None = None
) -> ProviderInbound:
    return ProviderInbound(
        "messenger", PAGE, InboundInput("messenger", "", PSID, message_type, content), mid, replied
    )


def test_messenger_text_and_reply_to() -> None:
    plain = page_event(message={"mid": "m_1", "text": "hello, world!"})
    replying = page_event(message={"mid": "m_2", "text": "yes", "reply_to": {"mid": "m_0"}})
    assert meta_events(page_callback(plain, replying)) == [
        messenger_inbound("text", {"text": "hello, world!"}),
        messenger_inbound("text", {"text": "yes"}, "m_2", "m_0"),
    ]


def test_messenger_quick_reply_is_its_text() -> None:
    tapped = page_event(message={"mid": "m_1", "text": "Red", "quick_reply": {"payload": "RED"}})
    assert meta_events(page_callback(tapped)) == [messenger_inbound("text", {"text": "Red"})]


@pytest.mark.parametrize("kind", ["image", "audio", "video", "file"])
def test_messenger_attachments(kind: str) -> None:
    url = "https://scontent.xx.fbcdn.net/v/t1.15752-9/media"
    attached = page_event(
        message={
            "mid": "m_1",
            "attachments": [
                {"type": kind, "payload": {"url": url}},
                {"type": "image", "payload": {"url": "second"}},
            ],
        }
    )
    assert meta_events(page_callback(attached)) == [messenger_inbound(kind, {kind: {"url": url}})]


def test_messenger_other_attachments_are_unsupported() -> None:
    location = page_event(
        message={
            "mid": "m_1",
            "attachments": [
                {"type": "location", "payload": {"coordinates": {"lat": 1, "long": 2}}}
            ],
        }
    )
    no_url = page_event(message={"mid": "m_2", "attachments": [{"type": "image", "payload": {}}]})
    empty = page_event(message={"mid": "m_3"})
    assert meta_events(page_callback(location, no_url, empty)) == [
        messenger_inbound("unsupported", {}, "m_1"),
        messenger_inbound("unsupported", {}, "m_2"),
        messenger_inbound("unsupported", {}, "m_3"),
    ]


def test_messenger_watermarks() -> None:
    delivery = page_event(delivery={"mids": ["m_1", "m_2", 3], "watermark": 1458668856253})
    delivery_without_mids = page_event(delivery={"watermark": 1458668856253})
    read = page_event(read={"watermark": 1458668856500})
    assert meta_events(page_callback(delivery, delivery_without_mids, read)) == [
        Watermark(PAGE, PSID, "delivered", 1458668856.253, ["m_1", "m_2"]),
        Watermark(PAGE, PSID, "delivered", 1458668856.253, []),
        Watermark(PAGE, PSID, "read", 1458668856.5, []),
    ]


def test_messenger_events_skipped() -> None:
    echo = page_event(
        message={"mid": "m_echo", "is_echo": True, "app_id": 1517776481860111, "text": "ours"}
    )
    postback = page_event(postback={"title": "Start", "payload": "GET_STARTED"})
    reaction = page_event(reaction={"mid": "m_1", "action": "react", "emoji": "😀"})
    no_sender = {"recipient": {"id": PAGE}, "message": {"mid": "m_x", "text": "who"}}
    no_mid = page_event(message={"text": "no mid"})
    bad_watermark = page_event(read={"watermark": "soon"})
    nan_watermark = page_event(read={"watermark": float("inf")})
    good = page_event(message={"mid": "m_ok", "text": "ok"})
    callback = page_callback(
        echo, postback, reaction, no_sender, no_mid, bad_watermark, nan_watermark, "junk", good
    )
    callback["entry"].extend(
        [{"messaging": [good]}, {"id": PAGE, "messaging": "junk"}, {"id": PAGE, "standby": [good]}]
    )
    assert meta_events(callback) == [messenger_inbound("text", {"text": "ok"}, "m_ok")]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "page",
        {},
        {"object": "instagram", "entry": []},
        {"object": "page"},
        {"object": "page", "entry": {"id": "1"}},
        {"object": "whatsapp_business_account", "entry": [1]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": []}]}]},
    ],
)
def test_unknown_or_empty_callbacks(payload: Any) -> None:
    assert meta_events(payload) == []


def test_meta_objects() -> None:
    assert META_OBJECTS == ("page", "whatsapp_business_account")


@settings(max_examples=200)
@given(json_values)
def test_meta_events_never_raise_on_any_json(value: Any) -> None:
    meta_events(value)
    meta_events({"object": "page", "entry": value})
    meta_events({"object": "whatsapp_business_account", "entry": value})


@settings(max_examples=300)
@given(
    st.sampled_from(
        [
            "text",
            "image",
            "document",
            "sticker",
            "location",
            "reaction",
            "interactive",
            "button",
            "order",
            "contacts",
            "video",
            "audio",
            "x",
        ]
    ),
    json_values,
    json_values,
)
def test_meta_events_never_raise_on_near_miss_shapes(kind: str, part: Any, other: Any) -> None:
    message = {"from": "1", "id": "w", "type": kind, kind: part, "context": other}
    meta_events(
        wa_callback(
            messages=[message],
            contacts=other,
            statuses=[{"id": "w", "status": "failed", "timestamp": other, "errors": part}],
        )
    )
    meta_events(
        page_callback(
            page_event(message={"mid": "m", "attachments": part, "text": other, "reply_to": other}),
            page_event(delivery={"mids": part, "watermark": other}),
            page_event(read=part),
        )
    )
    # a nested Struct holding what came in is still comparable
    assert all(
        isinstance(e, ProviderStatus | ProviderInbound | Watermark)
        for e in meta_events(wa_callback(messages=[message]))
    )
