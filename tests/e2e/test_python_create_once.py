"""A Python behavior's create is sent once across a worker SIGKILL (its calls are journaled).

A real worker runs a Python behavior that creates a Case and then queries it. A second module
loaded by that worker only SIGKILLs the pool process (once) after the simulator answered the
create: just after its 201 was recorded, or just before. The resumed attempt calls the
function again; the journal answers the create from the recorded 201 (run succeeded, same
id) or refuses to send it again (outcome_unknown). Either way there is exactly one Case; the
function used to be re-run whole and create a second.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    beat_fixture,
    no_default_worker_fixture,
    python_behavior_module,
    trigger,
    wait_status,
)

BEHAVIOR_MODULE = "fb_test_python_case"
BEHAVIOR = """
from shared.behaviors.registry import behavior
from shared.behaviors.templates import soql_literal


@behavior(
    "python-open-case",
    inputs={"subject": {"type": "string", "required": True}},
    account="acme-prod",
)
def open_case(ctx):
    sf = ctx.salesforce()
    created = sf.create("Case", {"Subject": ctx.inputs["subject"]})
    found = sf.query_result(f"SELECT Id FROM Case WHERE Id = {soql_literal(created['id'])}")
    return {"id": created["id"], "found": found["totalSize"]}
"""

CRASH_MODULE = "fb_test_python_crash_once"
CRASH = """
import os
import signal

from shared.runs.recorder import RunRecorder

MARK = os.environ["FB_TEST_CRASH_MARK"]
WHERE = os.environ["FB_TEST_CRASH_WHERE"]
_exchange = RunRecorder.exchange


def _die_once():
    try:
        os.close(os.open(MARK, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def exchange(self, key, summary):
    answered = summary.get("status") == 201 and "/sobjects/Case" in str(summary.get("url"))
    if answered and WHERE == "before-response-recorded":
        _die_once()
    result = _exchange(self, key, summary)
    if answered and WHERE == "after-response-recorded":
        _die_once()
    return result


RunRecorder.exchange = exchange
"""


@pytest.fixture
def behavior_module(tmp_path):
    with python_behavior_module(tmp_path, BEHAVIOR_MODULE, BEHAVIOR, "python-open-case") as path:
        yield path


@pytest.mark.parametrize(
    "where, expected",
    [("after-response-recorded", "succeeded"), ("before-response-recorded", "failed")],
)
def test_a_python_create_is_sent_once_across_a_sigkill(
    runtime,
    sim,
    linked_account,
    behavior_module,
    no_default_worker,
    worker_factory,
    beat,
    tmp_path,
    where,
    expected,
):
    (tmp_path / f"{CRASH_MODULE}.py").write_text(CRASH)
    linked_account()
    worker_factory(
        FORCEBOT_BEHAVIOR_MODULES=f"{BEHAVIOR_MODULE},{CRASH_MODULE}",
        PYTHONPATH=f"{ROOT}:{behavior_module}",
        FB_TEST_CRASH_MARK=str(tmp_path / "crashed"),
        FB_TEST_CRASH_WHERE=where,
        **FAST_ENV,
    )
    subject = f"Python once {where}"
    run_id = trigger(runtime, "python-open-case", {"subject": subject})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=90)

    assert (tmp_path / "crashed").exists(), "the worker was never killed"
    cases = [c for c in sim.control.records("Case") if c.get("Subject") == subject]
    assert len(cases) == 1, cases
    assert data["status"] == expected, data
    calls = [s for s in data["steps"] if s["id"] == "python:call-1"]
    assert len(calls) == 1 and calls[0]["action"] == "salesforce.create"
    if expected == "succeeded":
        assert data["result"] == {"id": cases[0]["Id"], "found": 1}
        assert calls[0]["status"] == "succeeded" and data["attempts"] == 1
    else:
        assert data["error"]["code"] == "outcome_unknown", data
        assert data["error"]["step"] == "python:call-1"
        assert "check in Salesforce" in data["error"]["message"]
