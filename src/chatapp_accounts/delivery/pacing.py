"""Per-account pacing of live sends (docs/providers.md, "Throughput"): each account (WhatsApp
number, Messenger page, RBM agent) gets turns at its channel's rate, and a provider's throttle
answer holds that account (or, for WhatsApp's pair limit, that account's messages to one
customer) until its retry; only that key waits, every other account goes on.

Turns are scheduled, not just counted (a token bucket in its virtual-scheduling form, GCRA): each
send is given the next free time of its account, a second's worth of sends (`rate` of them)
being free at once. A send whose turn is at most `HOLD` seconds away waits for it in memory; one
further away is not kept (it would take a sender's slot): its job goes back to the database, due
at its turn, which stays reserved for it. So the jobs of an account that is over its rate or
throttled are due one by one, as their turns come, rather than all at once: they do not fill the
due backlog that bounds `POST /v1/messages`. After a throttle answer, the account resumes at its
rate without the burst.

The turns are each process's own: with several processes, an account's rate is per process."""

from __future__ import annotations

import time
from collections.abc import Callable

HOLD = 0.25  # seconds a try may wait in memory for its turn
BURST = 1.0  # seconds' worth of sends that may go at once

Key = tuple[str, ...]


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[Key, float] = {}  # account -> its theoretical next turn (GCRA's TAT)
        self._throttled: dict[Key, float] = {}  # key -> held until
        self._turns: dict[int, float] = {}  # job -> the turn it was deferred to

    def turn(self, job: int, keys: tuple[Key, ...], rate: float) -> float:
        """Seconds until this job may be tried (0: now). `keys`: its account's first, then any
        narrower one (account and customer). A job deferred earlier keeps its reserved turn,
        unless a throttle came since."""
        now = self._clock()
        held = max((self._throttled.get(key, 0.0) for key in keys), default=0.0)
        reserved = self._turns.pop(job, None)
        if reserved is not None and held <= now and reserved <= now + HOLD:
            return max(0.0, reserved - now)
        account = keys[0]
        tat = self._next.get(account, now)
        own = max(now, self._throttled.get(account, 0.0), tat - BURST)  # the account's turn
        self._next[account] = max(tat, own) + 1.0 / rate
        at = max(own, held)  # (a customer's hold delays this job, not the account's others)
        if at - now > HOLD:
            self._turns[job] = at
            if len(self._turns) > 100_000:  # turns of jobs another process took: forgotten
                self._turns = {j: t for j, t in self._turns.items() if t > now - 60}
        return at - now

    def throttle(self, keys: tuple[Key, ...], seconds: float, *, pair: bool = False) -> None:
        """The provider said to slow down: nothing of the account (`keys[0]`), or with `pair`
        of the account to that customer (`keys[-1]`), goes for `seconds`; an account resumes at
        its rate, without a burst."""
        now = self._clock()
        until = now + seconds
        key = keys[-1] if pair else keys[0]
        if until > self._throttled.get(key, 0.0):
            self._throttled[key] = until
        if not pair:
            self._next[key] = max(self._next.get(key, now), until + BURST)
        if len(self._throttled) > 10_000:  # forget the holds that are over
            self._throttled = {k: u for k, u in self._throttled.items() if u > now}
