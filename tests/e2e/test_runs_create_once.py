"""A non-idempotent request is sent once even when its worker is SIGKILLed around it.

A module loaded into the worker through FORCEBOT_BEHAVIOR_MODULES kills the pool process
(SIGKILL, once) after the simulator has answered the Case create: either just before the step
commits (the response is recorded) or before the response is recorded.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import ROOT

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    beat_fixture,
    no_default_worker_fixture,
    save,
    trigger,
    wait_status,
)
from .test_runs_durability import CASE_BEHAVIOR

MODULE = "fb_test_crash_once"
SOURCE = """
import os
import signal

from shared.runs.recorder import RunRecorder

MARK = os.environ["FB_TEST_CRASH_MARK"]
WHERE = os.environ["FB_TEST_CRASH_WHERE"]
_finish = RunRecorder.finish
_exchange = RunRecorder.exchange


def _die_once():
    try:
        os.close(os.open(MARK, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def finish(self, key, status, output=None, error=None):
    if WHERE == "before-step-commit" and key == "case" and status == "succeeded":
        _die_once()
    return _finish(self, key, status, output, error)


def exchange(self, key, summary):
    if WHERE == "before-exchange-recorded" and key == "case" and summary.get("status") == 201:
        _die_once()
    return _exchange(self, key, summary)


RunRecorder.finish = finish
RunRecorder.exchange = exchange
"""


@pytest.mark.parametrize(
    "where, expected",
    [("before-step-commit", "succeeded"), ("before-exchange-recorded", "failed")],
)
def test_sigkill_after_the_create_was_answered_makes_one_record(
    runtime, sim, linked_account, no_default_worker, worker_factory, beat, tmp_path, where, expected
):
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    worker_factory(
        FORCEBOT_BEHAVIOR_MODULES=MODULE,
        PYTHONPATH=f"{ROOT}:{tmp_path}",
        FB_TEST_CRASH_MARK=str(tmp_path / "crashed"),
        FB_TEST_CRASH_WHERE=where,
        **FAST_ENV,
    )
    run_id = trigger(runtime, "open-case", {"subject": f"Once {where}"})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=90)

    assert (tmp_path / "crashed").exists(), "the worker was never killed"
    cases = [c for c in sim.control.records("Case") if c.get("Subject") == f"Once {where}"]
    assert len(cases) == 1, cases
    assert data["status"] == expected, data
    if expected == "succeeded":
        # The resumed attempt reused the recorded 201 instead of creating again.
        assert data["result"] == cases[0]["Id"] and data["attempts"] == 1
    else:
        assert data["error"]["code"] == "outcome_unknown", data
        assert data["error"]["step"] == "case"
        assert "check in Salesforce" in data["error"]["message"]
