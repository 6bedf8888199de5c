"""The benchmark harness works (a small, short run). It asserts nothing about speed: timed
assertions do not belong in tests on shared machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("get_basic", "get_jwt", "list_first", "list_deep", "create", "link_unlink")


def test_bench_quick_run_reports_every_figure(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "sqlite-quick.json").read_text())
    assert report["ceiling"]["rps"] > 0
    # The ceiling before the first scenario and after each: every scenario has its own.
    assert len(report["ceiling_runs"]) == len(SCENARIOS) + 1 == report["ceiling"]["runs"]
    assert min(report["ceiling_runs"]) == report["ceiling"]["min_rps"] > 0
    (scale,) = report["scales"]
    runs = report["ceiling_runs"]
    for i, name in enumerate(SCENARIOS):
        figures = scale[name]
        assert figures["ceiling_rps"] == pytest.approx((runs[i] + runs[i + 1]) / 2), name
        assert figures["requests"] > 0, name
        assert figures["errors"] == 0, (name, figures)  # every answer was a 2xx
        assert figures["p99_ms"] >= figures["p50_ms"] > 0
    assert scale["peak_rss_mb"] > 0
    table = (tmp_path / "sqlite-quick.md").read_text()
    assert "ratio to ceiling" in table and all(name in table for name in SCENARIOS)
    assert len(report["targets"]) == 7


@pytest.mark.parametrize("scenario", ["get_basic", "get_jwt", "list_first"])
def test_in_process_loop_answers_every_request(scenario: str) -> None:
    # bench/inprocess.py exits non-zero unless every request was answered 200.
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inprocess.py"), scenario, "--requests", "300"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.startswith(f"{scenario}: ") and "per request" in result.stdout


def test_messages_bench_quick_run_delivers_every_webhook() -> None:
    """bench/messages.py --quick: every scenario reports, every send's `delivered` webhook and
    every inbound's webhook reached the receiver (150 of 150 at 50/s for 3 s), and so did those
    sent while the receiver was down."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "messages.py"), "--quick"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = result.stdout
    for row in ("sends accepted, JWT", "sustained 100.0/s", "due backlog every 5 s"):
        assert row in report, report
    # Beyond capacity: every accepted message's two webhooks arrive, none twice.
    overload = next(line for line in report.splitlines() if "sends/s for 3.0 s" in line)
    accepted = int(overload.split("'202': ")[1].split("}")[0].split(",")[0])
    assert f"{2 * accepted} of {2 * accepted} webhooks arrived" in overload, overload
    assert ", 0 twice" in overload, overload
    assert report.count("(150 of 150)") == 2, report  # both latency scenarios, all delivered
    # 5 s of sends at 50/s with the receiver down: both webhooks of each, once it is back.
    assert "| receiver down 5.0 s under 50 sends/s | 500 of 500 webhooks arrived" in report, report
    assert "2,000 pending, receiver down" in report, report


def test_messages_bench_drains_with_the_server_settings_given() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "messages.py"), "--only", "drain",
         "--drain", "400", "--server-env", "CHATAPP_WEBHOOK_PER_DESTINATION=4"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "{'CHATAPP_WEBHOOK_PER_DESTINATION': '4'}" in result.stdout, result.stdout
    assert "drain: 400 webhooks in " in result.stdout, result.stdout


INBOX_TYPES = ("inbox", "sidebar", "messages", "conversation_first", "conversation_last",
               "search", "latest")  # fmt: skip


def test_inbox_bench_quick_run_reports_every_figure(tmp_path: Path) -> None:
    """bench/inbox.py --quick: 5,000 messages seeded, the inbox signed in to, every request
    type answered 200 and its server time read from the access log, sequentially and with
    concurrent clients, beside the ceiling; the conversation pages 50 at a time."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inbox.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "inbox-sqlite-quick.json").read_text())
    assert report["seeded"]["messages"] == 5000 and report["seeded"]["big"]["messages"] == 500
    assert report["seeded"]["webhooks"] > 0 and report["seeded"]["attempts"] > 0
    assert report["cold_first_page_ms"] > 0
    runs = report["ceiling_runs"]
    assert len(runs) == len(INBOX_TYPES) + 1 == report["ceiling"]["runs"] and min(runs) > 0
    for i, name in enumerate(INBOX_TYPES):
        seq, conc = report["requests"][name]["sequential"], report["requests"][name]["concurrent"]
        assert seq["statuses"] == {"200": 5}, (name, seq)
        assert seq["logged"] == 5, (name, seq)  # every request's access log line was found
        assert seq["server_p99_ms"] >= seq["server_p50_ms"] > 0, (name, seq)
        assert conc["requests"] > 0 and conc["errors"] == 0, (name, conc)
        assert conc["logged"] == conc["requests"], (name, conc)
        assert conc["server_p99_ms"] >= conc["server_p50_ms"] > 0, (name, conc)
        assert conc["ceiling_rps"] == pytest.approx((runs[i] + runs[i + 1]) / 2), name
    pages = {name: report["requests"][name]["sequential"]["page"] for name in INBOX_TYPES}
    assert pages["inbox"] == pages["messages"] == "1 of 100"
    assert pages["conversation_first"] == "1 of 10" and pages["conversation_last"] == "10 of 10"
    assert report["requests"]["conversation_last"]["sequential"]["items"] == 50
    assert report["requests"]["sidebar"]["sequential"]["items"] == 100  # conversations shown
    assert len(report["targets"]) == 3
    table = (tmp_path / "inbox-sqlite-quick.md").read_text()
    assert all(f"| {name} |" in table for name in INBOX_TYPES) and "ratio to ceiling" in table
