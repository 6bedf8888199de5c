"""Per-account pacing of live sends (docs/providers.md, "Throughput"): a token bucket at the
channel's rate for each account (WhatsApp number, Messenger page, RBM agent), and the time
until which a provider's throttle answer holds that account (or, for WhatsApp's pair limit, that
account's messages to one customer). Only that key waits; every other account goes on.

A send that may not go within `HOLD` seconds is not kept in memory (it would take a sender's
slot): its job goes back to the database, due when its turn comes."""

from __future__ import annotations

import time
from collections.abc import Callable

HOLD = 0.25  # seconds a try may wait in memory for its turn


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # key -> (tokens, at): tokens may go below zero, each one a reserved later turn
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}
        self._throttled: dict[tuple[str, ...], float] = {}  # key -> until (clock time)

    def reserve(self, keys: tuple[tuple[str, ...], ...], rate: float) -> float:
        """Seconds until a send under these keys may go (0: now), its turn taken when that
        is at most HOLD away; otherwise nothing is taken and the wait is the answer."""
        now = self._clock()
        blocked = max((self._throttled.get(key, 0.0) for key in keys), default=0.0)
        if blocked > now:
            return blocked - now
        account = keys[0]
        tokens, at = self._buckets.get(account, (rate, now))
        tokens = min(rate, tokens + (now - at) * rate)  # a second's burst at most
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        if wait > HOLD:
            self._buckets[account] = (tokens, now)
            return wait
        self._buckets[account] = (tokens - 1, now)
        return wait

    def throttle(self, key: tuple[str, ...], seconds: float) -> None:
        """The provider said to slow down: nothing under `key` goes for `seconds`."""
        until = self._clock() + seconds
        if until > self._throttled.get(key, 0.0):
            self._throttled[key] = until
        if len(self._throttled) > 10_000:  # forget the windows that are over
            now = self._clock()
            self._throttled = {k: u for k, u in self._throttled.items() if u > now}
