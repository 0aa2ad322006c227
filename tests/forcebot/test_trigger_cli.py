"""`forcebot trigger`: bad input exits 2, --wait follows the run to its end."""

from __future__ import annotations

import subprocess
import sys

from shared.behaviors.store import save_behavior
from tests.conftest import ROOT, settings_env

NOOP = """
name: noop
inputs:
  n: {type: integer, required: true}
steps:
  - id: s
    action: set
    vars: {x: "{{ inputs.n * 3 }}"}
result: "{{ vars.x }}"
"""
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


def _save(runtime, source: str) -> None:
    with runtime.Session.begin() as session:
        save_behavior(session, source)


def test_bad_json_and_bad_payload_exit_2(runtime, settings):
    _save(runtime, NOOP)
    result = forcebot(settings, "trigger", "noop", "--payload", "{not json")
    assert result.returncode == 2 and "--payload" in result.stderr
    result = forcebot(settings, "trigger", "noop", "--payload", '{"n": "x", "y": 1}')
    assert result.returncode == 2
    assert "inputs.n:" in result.stderr and "inputs.y:" in result.stderr
    assert "Traceback" not in result.stderr
    result = forcebot(settings, "trigger", "missing")
    assert result.returncode == 2 and "no behavior named" in result.stderr


def test_wait_exits_0_on_success_and_1_on_failure(runtime, settings, worker):
    _save(runtime, NOOP)
    _save(runtime, FAILS)
    result = forcebot(settings, "trigger", "noop", "--payload", '{"n": 5}', "--wait")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "15"
    assert "succeeded" in result.stderr and "attempt 1" in result.stderr
    result = forcebot(settings, "trigger", "always-fails", "--wait")
    assert result.returncode == 1
    assert "failed" in result.stderr and "this behavior always fails" in result.stderr


def test_idempotency_key_and_runs_cancel(runtime, settings, _session_workers):
    # No worker may take the run before we cancel it.
    if settings.database_url in _session_workers:
        _session_workers[settings.database_url].stop()
    _save(runtime, NOOP)
    first = forcebot(settings, "trigger", "noop", "--payload", '{"n": 1}', "--idempotency-key", "k")
    again = forcebot(settings, "trigger", "noop", "--payload", '{"n": 1}', "--idempotency-key", "k")
    assert first.returncode == 0 and again.returncode == 0
    run_id = first.stdout.split()[1]
    assert again.stdout.split()[1] == run_id and "exists" in again.stdout
    cancel = forcebot(settings, "runs", "cancel", run_id)
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    assert forcebot(settings, "runs", "cancel", run_id).returncode == 2
