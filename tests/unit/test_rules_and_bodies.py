"""Field rules and body parsing, without a database or a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatapp_accounts.api import bodies
from chatapp_accounts.api.http import query
from chatapp_accounts.domain import rules
from chatapp_accounts.domain.accounts import UNSET, MessengerInput
from chatapp_accounts.domain.errors import InvalidInput
from chatapp_accounts.domain.models import PageRequest, Provider


@pytest.mark.parametrize("value", ["1", "12345678", "a.b_c:d@e+f-g", "Z" * 100, "447700900000"])
def test_valid_external_ids(value: str) -> None:
    assert rules.external_id_problem(value) is None


@pytest.mark.parametrize("value", ["", "-a", ".a", "a b", "a/b", "a%2F", "é", "x" * 101, "a\n"])
def test_invalid_external_ids(value: str) -> None:
    assert rules.external_id_problem(value) is not None


@given(st.text(max_size=300))
def test_external_id_rule_matches_the_served_pattern(value: str) -> None:
    import re

    served = re.compile(rules.EXTERNAL_ID_PATTERN)
    assert (rules.external_id_problem(value) is None) == bool(served.fullmatch(value))


@given(st.text(max_size=50))
def test_control_rule_matches_the_served_pattern(value: str) -> None:
    import re

    served = re.compile(rules.CONTROL_PATTERN)
    assert rules.has_control_chars(value) == (served.fullmatch(value) is None)


def test_patch_changes_only_what_is_given() -> None:
    assert bodies.messenger_patch(b'{"name": "n"}', "42") == MessengerInput(name="n")
    assert bodies.messenger_patch(b'{"applications": []}', "42") == MessengerInput(
        application_id=None
    )
    assert bodies.messenger_patch(b'{"applications": ["a"]}', "42") == MessengerInput(
        application_id="a"
    )
    assert bodies.messenger_patch(b'{"other": 1}', "42") == MessengerInput()
    assert MessengerInput().name is UNSET


def test_patch_refuses_provider_change() -> None:
    with pytest.raises(InvalidInput) as err:
        bodies.messenger_patch(b'{"provider": "whatsapp"}', "42")
    assert err.value.params[0].reason == "'provider' parameter cannot be changed"


def test_create_body_application_is_optional() -> None:
    parsed = bodies.messenger_create(b'{"external_id": "1", "access_token": "t"}')
    assert parsed.application_id is None and parsed.name is None
    assert UNSET is not None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, PageRequest(1, 20)),
        ({"page_size": "100", "page_number": "3"}, PageRequest(3, 100)),
        ({"provider": "rcs"}, PageRequest(1, 20, Provider.RCS)),
    ],
)
def test_list_query_defaults(query: dict[str, str], expected: PageRequest) -> None:
    assert bodies.list_query(query) == expected


def test_json_media_types() -> None:
    assert bodies.is_json_media_type("application/json; charset=utf-8")
    assert bodies.is_json_media_type("application/vnd.api+json")
    assert not bodies.is_json_media_type("text/plain")
    assert not bodies.is_json_media_type(None)


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab=&%+;20 \u00e9", max_size=6),
            st.text(alphabet="ab=&%+;20 \u00e9", max_size=6),
        ),
        max_size=5,
    ),
    st.booleans(),
)
def test_query_parsing_is_parse_qsl(pairs: list[tuple[str, str]], raw: bool) -> None:
    """The fast split of an unescaped query answers what parse_qsl answers, for any query."""
    from urllib.parse import parse_qsl, urlencode

    text = "&".join(f"{k}={v}" if v else k for k, v in pairs) if raw else urlencode(pairs)
    scope = {"query_string": text.encode("latin-1")}
    assert query(scope) == dict(parse_qsl(text, keep_blank_values=True))
