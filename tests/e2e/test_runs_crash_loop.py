"""A run that kills its worker is resumed a few times, then fails; other runs keep flowing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.models import Run
from tests.conftest import ROOT, poll

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    NOOP_BEHAVIOR,
    beat_fixture,
    no_default_worker_fixture,
    python_behavior_module,
    save,
    statuses,
    trigger,
    wait_status,
)

MODULE = "fb_test_worker_killer"
SOURCE = '''
import os

from shared.behaviors.registry import behavior


@behavior("kill-my-worker")
def kill(ctx):
    """What an out-of-memory kill or a segfault looks like from the run's side."""
    os._exit(137)
'''


@pytest.fixture
def killer_module(tmp_path):
    with python_behavior_module(tmp_path, MODULE, SOURCE, "kill-my-worker") as directory:
        yield directory


def test_a_run_that_kills_its_worker_fails_after_n_resumptions(
    runtime, killer_module, no_default_worker, worker_factory, beat
):
    worker_factory(
        concurrency=2,
        FORCEBOT_BEHAVIOR_MODULES=MODULE,
        PYTHONPATH=f"{ROOT}:{killer_module}",
        FORCEBOT_RUN_MAX_RESUMPTIONS="2",
        **FAST_ENV,
    )
    save(runtime, NOOP_BEHAVIOR)
    killer = trigger(runtime, "kill-my-worker", {})
    ids = [trigger(runtime, "noop", {"n": n}) for n in range(10)]

    data = wait_status(runtime, killer, ("failed", "succeeded"), timeout=120)
    assert data["status"] == "failed", data
    assert data["error"]["code"] == "worker_lost", data
    assert "resumed 2 times" in data["error"]["message"]
    with runtime.Session() as session:
        assert session.get(Run, killer).resumptions == 3
    # The other runs were not held up for good by the crashing one, and more still flow.
    ids += [trigger(runtime, "noop", {"n": n}) for n in range(10, 15)]

    def others_done() -> bool:
        with runtime.Session() as session:
            done = session.scalars(
                select(Run.status).where(Run.id.in_(ids), Run.status == "succeeded")
            ).all()
        return len(done) == len(ids)

    poll(others_done, 60, 0.2, message=f"the other runs to succeed ({statuses(runtime)})")
