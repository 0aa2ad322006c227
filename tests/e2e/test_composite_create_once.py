"""A salesforce.composite create is sent once even when its worker is SIGKILLed around it, as
salesforce.create is (tests/e2e/test_runs_create_once.py): the pool process dies after the
simulator answered the collection POST, before the step commits or before the response is
recorded."""

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
from .test_runs_create_once import SOURCE

MODULE = "fb_test_crash_composite_once"
# The same crash hooks, on this step and the collection's 200 answer.
CRASH = SOURCE.replace('key == "case"', 'key == "made"').replace(
    'summary.get("status") == 201', 'summary.get("status") == 200'
)

BEHAVIOR = """
name: make-two
account: acme-prod
inputs:
  tag: {type: string, required: true}
steps:
  - id: made
    action: salesforce.composite
    operation: create
    sobject: Contact
    all_or_none: true
    records:
      - {LastName: "{{ inputs.tag }}-1"}
      - {LastName: "{{ inputs.tag }}-2"}
result: "{{ steps.made }}"
"""


@pytest.mark.parametrize(
    "where, expected",
    [("before-step-commit", "succeeded"), ("before-exchange-recorded", "failed")],
)
def test_sigkill_after_the_collection_create_was_answered_creates_each_record_once(
    runtime, sim, linked_account, no_default_worker, worker_factory, beat, tmp_path, where, expected
):
    assert CRASH != SOURCE
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(CRASH))
    linked_account()
    save(runtime, BEHAVIOR)
    worker_factory(
        FORCEBOT_BEHAVIOR_MODULES=MODULE,
        PYTHONPATH=f"{ROOT}:{tmp_path}",
        FB_TEST_CRASH_MARK=str(tmp_path / "crashed"),
        FB_TEST_CRASH_WHERE=where,
        **FAST_ENV,
    )
    run_id = trigger(runtime, "make-two", {"tag": where})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=90)

    assert (tmp_path / "crashed").exists(), "the worker was never killed"
    made = [c for c in sim.control.records("Contact") if c["LastName"].startswith(where)]
    assert sorted(c["LastName"] for c in made) == [f"{where}-1", f"{where}-2"]  # not 4
    assert data["status"] == expected, data
    if expected == "succeeded":
        # The resumed attempt reused the recorded 200 list instead of creating again.
        ids = {c["LastName"]: c["Id"] for c in made}
        assert data["result"] == [
            {"id": ids[f"{where}-1"], "success": True, "errors": []},
            {"id": ids[f"{where}-2"], "success": True, "errors": []},
        ]
        assert data["attempts"] == 1
    else:
        assert data["error"]["code"] == "outcome_unknown", data
        assert data["error"]["step"] == "made"
        assert "Contact create" in data["error"]["message"]
