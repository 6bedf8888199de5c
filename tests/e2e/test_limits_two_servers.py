"""A tenant's limit holds across servers (docs/limits.md): two servers on one PostgreSQL, one
tenant flooding both far past its own limit. What the two admitted in each whole second (their
access logs) never passes the limit once the first whole second of the burst is over (that one
by a little at most), and reaches most of it; another tenant on the same servers is not refused; the refusals carry the
headers."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from typing import Any

import httpx2 as httpx
import pytest

from chatapp_accounts.security.tokens import new_key

from .server import base_env, cli, new_tenant, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
LIMIT = 20
SECONDS = 4.0
_LOG = re.compile(r"^(\S+?)\.\d+Z .* status=(\d+) .* api_key=(\S+)$")


def _flood(url: str, auth: tuple[str, str], until: float, answers: list[Any]) -> None:
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        while time.time() < until:
            answers.append(client.get("/v2/applications"))


def _admitted(output: str, api_key: str) -> Counter[str]:
    seconds: Counter[str] = Counter()
    for line in output.splitlines():
        found = _LOG.match(line)
        if found and found.group(3) == api_key and found.group(2) == "200":
            seconds[found.group(1)] += 1
    return seconds


def test_a_limit_holds_across_two_servers_on_one_postgres(pg_databases: Any) -> None:
    env = base_env(CHATAPP_DATABASE_URL=pg_databases.new(), CHATAPP_ENCRYPTION_KEYS=new_key(),
                   CHATAPP_DISPATCHER="false")  # fmt: skip
    flooder, other = new_tenant(env), new_tenant(env)
    set_limit = cli("tenants", "limits", flooder["api_key"], "--requests", str(LIMIT), env=env)
    assert set_limit.returncode == 0, set_limit.stderr
    auth = (flooder["api_key"], flooder["api_secret"])
    with running_server(env) as one, running_server(env) as two:
        time.sleep(1.2)  # each process reads the tenants' own limits every second
        until = time.time() + SECONDS
        answers: list[Any] = []
        threads = [threading.Thread(target=_flood, args=(s.url, auth, until, answers))
                   for s in (one, two) for _ in range(3)]  # fmt: skip
        for t in threads:
            t.start()
        time.sleep(SECONDS / 2)
        beside = httpx.get(f"{one.url}/v2/applications", auth=(other["api_key"],
                                                               other["api_secret"]))  # fmt: skip
        for t in threads:
            t.join()
        time.sleep(0.5)  # the last access log lines
        output = one.output + two.output
    assert beside.status_code == 200  # another tenant, on the same server, meanwhile
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) > len(answers) / 2  # far past the limit
    assert {a.status_code for a in answers} == {200, 429}
    h = refused[-1].headers
    assert h["x-ratelimit-limit"] == str(LIMIT) and h["x-ratelimit-remaining"] == "0"
    assert refused[-1].json()["type"] == "https://developer.nexmo.com/api-errors#throttled"
    per_second = _admitted(output, flooder["api_key"])
    seconds = sorted(per_second)[1:-1]  # whole seconds only: the first and last were cut
    assert len(seconds) >= 2, per_second
    counts = [per_second[s] for s in seconds]
    # The burst's first whole second may go past by what both take on credit while their
    # first claims of it are made (docs/limits.md); after it, never, on both together.
    assert counts[0] <= LIMIT * 1.5, per_second
    assert all(c <= LIMIT for c in counts[1:]), per_second
    assert all(c >= LIMIT * 0.75 for c in counts), per_second  # and not starved either
