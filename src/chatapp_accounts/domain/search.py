"""Searching a tenant's messages, as the web inbox's search box and the sandbox API's `q`
parameter both do (docs/inbox.md): words, and operators as mail catchers have them.

    account:447700900000 customer:447700900001 status:delivered type:text channel:whatsapp
    to:447700900001 direction:inbound before:2026-12-07 after:2026-12-06T10:00 hello world

`account:` and `customer:` name a conversation's two ends, whichever way a message went;
`before:`/`after:` take an ISO date or date and time (UTC unless it names an offset) or epoch
seconds. Words are matched, each, anywhere in the message's content (its text, caption, URL...).
Bad operators or values are InvalidMessageParams, naming them, as the other query parameters.
"""

from __future__ import annotations

import datetime as dt
import shlex

import msgspec

from . import rules
from .errors import InvalidMessageParams, InvalidParam
from .models import MessageFilter

OPERATORS = ("account", "customer", "to", "from", "status", "type", "channel", "direction",
             "before", "after")  # fmt: skip
DIRECTIONS = ("outbound", "inbound")
WORDS_MAX = 8
QUERY_MAX = 500


def _moment(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def search_filter(query: str, base: MessageFilter | None = None) -> MessageFilter:
    """`base` (page, size, the other parameters) narrowed by the search `query`."""
    base = base or MessageFilter()
    problems: list[InvalidParam] = []
    if len(query) > QUERY_MAX:
        raise InvalidMessageParams(params=[InvalidParam("q", f"at most {QUERY_MAX} characters")])
    try:
        terms = shlex.split(query)
    except ValueError:
        terms = query.split()
    fields: dict[str, object] = {}
    words: list[str] = []
    for term in terms:
        name, colon, value = term.partition(":")
        if not colon or name not in OPERATORS:
            if colon and name.isalpha() and name.islower():
                problems.append(InvalidParam("q", f"unknown operator {name}: (one of "
                                             f"{', '.join(OPERATORS)})"))  # fmt: skip
            else:
                words.append(term)
            continue
        if name in ("before", "after"):
            moment = _moment(value)
            if moment is None:
                problems.append(InvalidParam("q", f"{name}: takes a date, such as 2026-12-07"))
            fields[name] = moment
        elif name == "direction" and value not in DIRECTIONS:
            problems.append(InvalidParam("q", "direction: is outbound or inbound"))
        elif name in ("account", "customer", "to", "from") and not rules.could_be_external_id(
            value
        ):
            problems.append(InvalidParam("q", f"{name}: takes an id or a number"))
        elif name in ("status", "type", "channel") and not (
            0 < len(value) <= 16 and value.replace("_", "").isalnum()
        ):
            problems.append(InvalidParam("q", f"{name}: takes a word, such as delivered"))
        else:
            key = {"type": "message_type", "from": "sender", "customer": "peer"}.get(name, name)
            fields[key] = value
    if len(words) > WORDS_MAX:
        problems.append(InvalidParam("q", f"at most {WORDS_MAX} words"))
    if problems:
        raise InvalidMessageParams(params=problems)
    if words:
        fields["words"] = tuple(words)
    return msgspec.structs.replace(base, **fields)
