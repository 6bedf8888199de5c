"""Bounds on the values the API accepts (docs/decisions.md, "Strings have bounds").

Each check returns the reason a value is refused, or None. They are shared by the HTTP
layer (which turns reasons into `invalid_params`) and the command line.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

EXTERNAL_ID_MAX = 100
NAME_MAX = 255
ACCESS_TOKEN_MAX = 4096
APPLICATION_ID_MAX = 100
PAGE_SIZE_MAX = 100
# Query integers are 1 to 9 ASCII digits: below 2**31, so every client can hold them.
QUERY_INT_DIGITS_MAX = 9
QUERY_INT_MAX = 10**QUERY_INT_DIGITS_MAX - 1

EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,99}$"
# U+0000-U+001F, U+007F and U+0080-U+009F: never allowed in any string.
CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"

_EXTERNAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+\-]{0,99}\Z")
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
_NOT_IN_ID = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff]")


def could_be_external_id(value: str) -> bool:
    """False for a value no account can have: lookups answer "not found" without a query."""
    return _EXTERNAL_ID.match(value) is not None


def could_be_id(value: str, maximum: int = APPLICATION_ID_MAX) -> bool:
    """False for an id (application id, api_key) that breaks the rules: nothing has it. A lone
    surrogate (JSON's "\\ud800", in a JWT's claims) cannot even be sent to the database."""
    return 0 < len(value) <= maximum and _NOT_IN_ID.search(value) is None


def has_control_chars(value: str) -> bool:
    return _CONTROL.search(value) is not None


def bounded_text(value: str, field: str, maximum: int, minimum: int = 0) -> str | None:
    if has_control_chars(value):
        return f"`{field}` must not contain control characters"
    if len(value) < minimum:
        return f"`{field}` must not be empty" if minimum == 1 else f"`{field}` is too short"
    if len(value) > maximum:
        return f"`{field}` must be at most {maximum} characters"
    return None


def external_id_problem(value: str, field: str = "external_id") -> str | None:
    if _EXTERNAL_ID.match(value):
        return None
    if not value:
        return f"`{field}` must not be empty"
    if len(value) > EXTERNAL_ID_MAX:
        return f"`{field}` must be at most {EXTERNAL_ID_MAX} characters"
    return (
        f"`{field}` must start with a letter or digit and contain only letters, digits and ._:@+-"
    )


def name_problem(value: str) -> str | None:
    return bounded_text(value, "name", NAME_MAX)


def access_token_problem(value: str) -> str | None:
    return bounded_text(value, "access_token", ACCESS_TOKEN_MAX, minimum=1)


def application_id_problem(value: str, field: str = "application") -> str | None:
    return bounded_text(value, field, APPLICATION_ID_MAX, minimum=1)


def page_count(total_items: int, page_size: int) -> int:
    """Pages of a list: an empty list is one empty page, so a client that stops paging when
    `page == total_pages` (Vonage's SDK does) stops."""
    return max(1, -(-total_items // page_size))


# Messages --------------------------------------------------------------------------------

CLIENT_REF_MAX = 100  # the field's own description and Vonage's SDK; the 1060 example's 40 is stale


def retry_delay(attempts: int, first: float, max_interval: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: `first`, then doubling, at most
    `max_interval` apart (Vonage's schedule, docs/messages.md)."""
    return float(min(max_interval, first * 2 ** min(attempts - 1, 60)))


def send_retry_delay(attempts: int, first: float, max_interval: float, after: float | None,
                     spread: float) -> float:  # fmt: skip
    """Seconds to wait before trying a provider again: the retry schedule with jitter (the wait
    is between 75 % and 100 % of it: `spread` from 0 to 1, a random draw, spreads the retries of
    many messages that failed together), never less than the provider's `Retry-After`."""
    delay = retry_delay(attempts, first, max_interval) * (0.75 + 0.25 * spread)
    return max(delay, after or 0.0)


def is_retryable(status_code: int | None) -> bool:
    """A connection failure or timeout (None), 429 or 5xx is tried again; any other answer
    that is not 2xx fails the webhook at once."""
    return status_code is None or status_code == 429 or status_code >= 500


def is_delivered(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


_DELTA = re.compile(r"[0-9]{1,10}")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header (a webhook receiver's, a provider's) in seconds from `now`:
    delta-seconds, or an HTTP-date (one already past is 0); None when absent or not one of
    those."""
    if value is None:
        return None
    text = value.strip()
    if _DELTA.fullmatch(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # `-0000`: UTC, the zone unsaid
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    current = time.time() if now is None else now
    return max(0.0, seconds - current)


# The sandbox's fault switches (domain/sandbox.py) ------------------------------------------

# The longest delay the sandbox channel may be told to wait before taking a send, whatever the
# provider timeout; below a short timeout, less (sandbox_delay_max).
SANDBOX_DELAY_CAP = 10.0
# The failures it may be told to force: those the reserved recipients 0002 and 0001 end with.
SANDBOX_FAILURES = ("rejected", "undeliverable")


def sandbox_delay_max(provider_timeout: float) -> float:
    """The longest delay allowed: a second less than the provider timeout (a try that waits
    longer than the timeout is counted unanswered and tried again), at most SANDBOX_DELAY_CAP
    and at least 0. At the default timeout (10 s): 9 s."""
    return max(0.0, min(SANDBOX_DELAY_CAP, provider_timeout - 1.0))


def sandbox_delay_problem(delay: float, maximum: float = SANDBOX_DELAY_CAP) -> str | None:
    """(The reasons below are the Messages API's: they follow the field's name.)"""
    if not 0.0 <= delay <= maximum:  # (NaN fails both)
        return f"must be a number of seconds from 0 to {maximum:g}"
    return None


def sandbox_fail_problem(fail: str | None) -> str | None:
    if fail is not None and fail not in SANDBOX_FAILURES:
        return "must be rejected, undeliverable or null"
    return None
