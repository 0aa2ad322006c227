"""`forcebot trigger`: bad input exits 2, --wait follows the run to its end."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, settings_env
from tests.e2e.runs_support import (  # noqa: F401 - fixtures
    NOOP_BEHAVIOR,
    no_default_worker_fixture,
    save,
)

FAILS = """
name: always-fails
steps:
  - id: boom
    action: fail
    code: nope
    message: "this behavior always fails"
"""


def forcebot(settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forcebot", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_json_and_bad_payload_exit_2(runtime, settings):
    save(runtime, NOOP_BEHAVIOR)
    result = forcebot(settings, "trigger", "noop", "--payload", "{not json")
    assert result.returncode == 2 and "--payload" in result.stderr
    result = forcebot(settings, "trigger", "noop", "--payload", '{"n": "x", "y": 1}')
    assert result.returncode == 2
    assert "payload.n:" in result.stderr and "payload.y:" in result.stderr
    assert "Traceback" not in result.stderr
    result = forcebot(settings, "trigger", "missing")
    assert result.returncode == 2 and "no behavior named" in result.stderr


def test_wait_exits_0_on_success_and_1_on_failure(runtime, settings, worker):
    save(runtime, NOOP_BEHAVIOR)
    save(runtime, FAILS)
    result = forcebot(settings, "trigger", "noop", "--payload", '{"n": 5}', "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "15"
    assert "succeeded" in result.stderr and "attempt 1" in result.stderr
    result = forcebot(settings, "trigger", "always-fails", "--wait")
    assert result.returncode == 1
    assert "failed" in result.stderr and "this behavior always fails" in result.stderr


def test_idempotency_key_and_runs_cancel(runtime, settings, no_default_worker):
    # No worker may take the run before we cancel it.
    save(runtime, NOOP_BEHAVIOR)
    first = forcebot(settings, "trigger", "noop", "--payload", '{"n": 1}', "--idempotency-key", "k")
    again = forcebot(settings, "trigger", "noop", "--payload", '{"n": 1}', "--idempotency-key", "k")
    assert first.returncode == 0 and again.returncode == 0
    run_id = first.stdout.split()[1]
    assert again.stdout.split()[1] == run_id and "exists" in again.stdout
    cancel = forcebot(settings, "runs", "cancel", run_id)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    assert forcebot(settings, "runs", "cancel", run_id).returncode == 2
