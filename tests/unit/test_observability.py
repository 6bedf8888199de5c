"""Metrics count each answer as it is sent; the access log remembers the last time it
formatted: each line still has its own."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chatapp_accounts.api.observability import AccessLog, Metrics


def test_each_answer_is_counted_when_it_is_sent() -> None:
    metrics = Metrics()
    route = "/beta/chatapp-accounts"
    metrics.observe(route, "GET", 200, 0.0007)
    metrics.observe(route, "GET", 200, 0.3)
    metrics.observe(route, "GET", 401, 0.0001)
    metrics.jwt_cache_hit()
    sample = metrics.registry.get_sample_value
    assert (
        sample("chatapp_http_requests_total", {"route": route, "method": "GET", "status": "200"})
        == 2
    )
    assert (
        sample("chatapp_http_requests_total", {"route": route, "method": "GET", "status": "401"})
        == 1
    )
    buckets = {
        le: sample("chatapp_http_request_duration_seconds_bucket", {"route": route, "le": le})
        for le in ("0.0005", "0.001", "0.25", "0.5", "+Inf")
    }
    assert buckets == {"0.0005": 1, "0.001": 2, "0.25": 2, "0.5": 3, "+Inf": 3}
    assert sample("chatapp_jwt_cache_hits_total") == 1
    assert (
        b'chatapp_http_requests_total{method="GET",route="/beta/chatapp-accounts",status="200"} 2.0'
        in metrics.render()
    )


@given(st.lists(st.floats(min_value=0, max_value=4e9), max_size=30), st.booleans())
def test_log_timestamps_are_right_however_the_times_follow(
    times: list[float], ordered: bool
) -> None:
    """The access log remembers the last millisecond and second it formatted: each line's time
    is still its own, in order, out of order, and across a second's end."""
    log = AccessLog()
    for now in sorted(times) if ordered else times:
        millisecond = int(now * 1000)
        second = datetime.fromtimestamp(millisecond // 1000, UTC)
        expected = f"{second:%Y-%m-%dT%H:%M:%S}.{millisecond % 1000:03d}Z"
        assert log._timestamp(now) == expected
        assert log._timestamp(now + 1.0) != expected  # a second later is another stamp
