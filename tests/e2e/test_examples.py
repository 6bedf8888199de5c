"""The examples project and the plugin's failing cases, each run by pytest in a process of its
own, as a user runs it: the plugin comes from the installed package's entry point."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CASES = Path(__file__).parent / "plugin_cases"


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pytest` in `cwd`, with none of this run's pytest or chatapp settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "CHATAPP_", "REQUESTS_CA_BUNDLE"))}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def summary(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr


def test_the_examples_pass() -> None:
    result = run_pytest(ROOT / "examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^5 passed in ", summary(result)), result.stdout


def case(tmp_path: Path, name: str) -> Path:
    """The case file alone in a folder: its own rootdir, no conftest, no ini."""
    shutil.copy(CASES / f"{name}.py", tmp_path / f"test_{name}.py")
    return tmp_path


def test_a_receiver_that_never_answers_fails_the_test_with_the_attempts(tmp_path: Path) -> None:
    result = run_pytest(case(tmp_path, "case_never_answers"))
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert re.search(r"^1 failed, 1 passed in ", summary(result)), out
    assert "FAILED test_case_never_answers.py::test_never_answered - Failed: webhook_" in out
    assert "::test_never_answered_allowed" not in out.split("short test summary info")[1]
    failure = out.split("_ test_never_answered _")[1]
    url = r"http://127\.0\.0\.1:\d+/hooks-[0-9a-f]{8}/hooks/inbound"
    assert "webhook_receiver: webhooks to it failed" in failure
    assert re.search(rf"webhook \d+ inbound 'text' of message [0-9a-f-]{{36}} to {url}: pending",
                     failure), failure  # fmt: skip
    assert re.search(rf"attempt 1 at \d{{4}}-\d\d-\d\dT[\d:.]+Z: {url} status -, error no answer "
                     r"within 2 s", failure), failure  # fmt: skip
    assert re.search(r"POST /hooks/inbound [0-9a-f-]{36} text  answered never  \(signature "
                     r"verified\)", failure), failure  # fmt: skip


def test_bad_signatures_and_unmet_expectations_fail_the_test(tmp_path: Path) -> None:
    result = run_pytest(case(tmp_path, "case_signatures"))
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert re.search(r"^3 failed, 1 passed in ", summary(result)), out
    wrong = out.split("_ test_wrong_secret _")[1].split("_ test_unsigned _")[0]
    assert re.search(r"the webhook POST /hooks/inbound [0-9a-f-]{36} text received at "
                     r"[\d:.]+: signature did not verify: the JWT's HS256 signature does not "
                     r"match the signature secret it was checked with", wrong), wrong  # fmt: skip
    unsigned = out.split("_ test_unsigned _")[1]
    assert ("the webhook POST /hooks/status m-1 delivered received at" in unsigned
            and "no Authorization header: the webhook is unsigned" in unsigned), unsigned  # fmt: skip
    never = out.split("_ test_expected_never_came _")[1]
    assert ("webhook_receiver: a webhook with message_uuid='never-sent', status='delivered' "
            "was expected and never came") in never, never  # fmt: skip
    assert "::test_wrong_secret_allowed" not in out.split("short test summary info")[1]
    assert "not-the-tenant-signature-secret" not in out.split("short test summary info")[1]
    assert "Bearer ey" not in out
