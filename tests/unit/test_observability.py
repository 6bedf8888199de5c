"""Metrics tally answers and add them to Prometheus once per turn: a scrape shows what one
Prometheus update per answer would have shown. The access log remembers the last time it
formatted: each line still has its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from chatapp_accounts.api.observability import _BUCKETS, AccessLog, Metrics

ROUTES = st.sampled_from(["/beta/chatapp-accounts", "/beta/chatapp-accounts/rcs/{external_id}"])
SECONDS = st.one_of(
    st.sampled_from([0.0, *_BUCKETS, 2.5000001, 30.0]),  # on the bounds, and past the last
    st.floats(min_value=0, max_value=5, allow_nan=False),
)
ANSWERS = st.lists(
    st.tuples(ROUTES, st.sampled_from(["GET", "POST"]), st.sampled_from([200, 401]), SECONDS),
    max_size=40,
)


def exposition(registry: CollectorRegistry, *names: str) -> dict[str, float]:
    """The registry's samples of these metrics, without the `_created` times."""
    lines = generate_latest(registry).decode().splitlines()
    return {
        sample: float(value)
        for sample, _, value in (line.rpartition(" ") for line in lines)
        if sample.startswith(names) and "_created" not in sample
    }


def assert_same(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    for sample, value in got.items():
        if "_sum{" in sample:  # the same seconds, added up in another order
            assert value == pytest.approx(expected[sample], rel=1e-12, abs=1e-15), sample
        else:
            assert value == expected[sample], sample


def per_answer(answers: list[tuple[str, str, int, float]], hits: int) -> CollectorRegistry:
    """The same metrics, each answer a Prometheus update of its own."""
    r = CollectorRegistry()
    requests = Counter("chatapp_http_requests", "", ["route", "method", "status"], registry=r)
    latency = Histogram(
        "chatapp_http_request_duration_seconds", "", ["route"], buckets=_BUCKETS, registry=r
    )
    jwt_hits = Counter("chatapp_jwt_cache_hits", "", registry=r)
    for route, method, status, seconds in answers:
        requests.labels(route, method, str(status)).inc()
        latency.labels(route).observe(seconds)
    jwt_hits.inc(hits)
    return r


NAMES = ("chatapp_http_request", "chatapp_jwt_cache_hits")


@given(ANSWERS, ANSWERS, st.integers(min_value=0, max_value=5))
def test_a_scrape_shows_what_an_update_per_answer_would(
    first: list[tuple[str, str, int, float]],
    second: list[tuple[str, str, int, float]],
    hits: int,
) -> None:
    metrics = Metrics()
    for answer in first:
        metrics.observe(*answer)  # no event loop: folded at once, answer by answer
    for _ in range(hits):
        metrics.jwt_cache_hit()

    async def one_turn() -> None:  # in a loop: tallied, and folded when the turn ends
        for answer in second:
            metrics.observe(*answer)
        await asyncio.sleep(0)

    asyncio.run(one_turn())
    metrics.render()  # a scrape folds what is still tallied
    assert_same(
        exposition(metrics.registry, *NAMES), exposition(per_answer(first + second, hits), *NAMES)
    )


def test_answers_are_tallied_until_the_turn_ends() -> None:
    metrics = Metrics()
    route = "/beta/chatapp-accounts"

    def count() -> float | None:
        return metrics.registry.get_sample_value(
            "chatapp_http_requests_total", {"route": route, "method": "GET", "status": "200"}
        )

    async def turn() -> tuple[float | None, float | None]:
        metrics.observe(route, "GET", 200, 0.001)
        metrics.observe(route, "GET", 200, 0.002)
        during = count()
        await asyncio.sleep(0)
        return during, count()

    during, after = asyncio.run(turn())
    assert (during, after) == (None, 2.0)
    assert metrics.registry.get_sample_value(
        "chatapp_http_request_duration_seconds_sum", {"route": route}
    ) == pytest.approx(0.003)


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
