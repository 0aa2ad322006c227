"""Helpers for the runs tests: fast timings, a beat process, a behavior, triggering, polling."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shared import runs
from shared.behaviors.registry import unregister
from shared.behaviors.store import save_behavior
from shared.models import Run
from tests.conftest import ChildProcess, poll, settings_env

# Short thresholds so a lost message or a dead worker is noticed in seconds, not minutes.
FAST_ENV = {
    "FORCEBOT_RUN_DISPATCH_EVERY_SECONDS": "0.5",
    "FORCEBOT_RUN_RECONCILE_EVERY_SECONDS": "1",
    "FORCEBOT_RUN_RECONCILE_QUEUED_AFTER_SECONDS": "2",
    "FORCEBOT_RUN_HEARTBEAT_EVERY_SECONDS": "0.5",
    "FORCEBOT_RUN_HEARTBEAT_STALE_SECONDS": "3",
    "FORCEBOT_RUN_RETRY_BASE_SECONDS": "0.2",
    "FORCEBOT_RUN_QUOTA_RECHECK_SECONDS": "1",
}


# A behavior that needs no account: the result is 3 * n.
NOOP_BEHAVIOR = """
name: noop
inputs:
  n: {type: integer, required: true}
steps:
  - id: triple
    action: set
    vars: {x: "{{ inputs.n * 3 }}"}
result: "{{ vars.x }}"
"""

# One GET of /limits: a delay fault on that path keeps a run active for as long as a test needs.
LIMITS_BEHAVIOR = """
name: record-limits
account: acme-prod
steps:
  - id: limits
    action: http.request
    method: GET
    url: /services/data/v62.0/limits
result: "{{ steps.limits.status }}"
"""


class BeatProcess(ChildProcess):
    """A real `forcebot beat`, started at once."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, f"beat-{uuid.uuid4().hex[:6]}")
        self.spawn("beat", "--loglevel", "INFO")


@pytest.fixture(name="no_default_worker")
def no_default_worker_fixture(settings: Any, _session_workers: dict[str, Any]) -> None:
    """Stop the shared worker of this backend: it runs with production thresholds."""
    proc = _session_workers.get(settings.database_url)
    if proc is not None:
        proc.stop()


@pytest.fixture(name="fast_worker")
def fast_worker_fixture(
    no_default_worker: None, worker_factory: Callable[..., Any]
) -> Callable[..., Any]:
    def start(name: str | None = None, concurrency: int = 2) -> Any:
        return worker_factory(concurrency=concurrency, name=name, **FAST_ENV)

    return start


@pytest.fixture(name="beat")
def beat_fixture(settings: Any, no_default_worker: None) -> Iterator[BeatProcess]:
    process = BeatProcess({**settings_env(settings), **FAST_ENV})
    yield process
    process.stop()


def save(runtime: Any, source: str) -> None:
    with runtime.Session.begin() as session:
        save_behavior(session, source)


def trigger(runtime: Any, name: str, payload: dict[str, Any], **kwargs: Any) -> int:
    from worker.tasks.runs import enqueue

    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, name, payload, **kwargs)
        run_id = run.id
    enqueue(run_id)
    return run_id


def run_dict(runtime: Any, run_id: int) -> dict[str, Any]:
    with runtime.Session() as session:
        return runs.run_to_dict(session.get(Run, run_id))


def wait_status(
    runtime: Any, run_id: int, statuses: tuple[str, ...] | str, timeout: float = 30
) -> dict[str, Any]:
    wanted = (statuses,) if isinstance(statuses, str) else statuses

    def check() -> dict[str, Any] | None:
        data = run_dict(runtime, run_id)
        return data if data["status"] in wanted else None

    return poll(check, timeout, 0.1, message=f"run {run_id} to be {wanted}")


def statuses(runtime: Any) -> dict[str, int]:
    with runtime.Session() as session:
        counts: dict[str, int] = {}
        for status in session.scalars(select(Run.status)):
            counts[status] = counts.get(status, 0) + 1
        return counts


@contextmanager
def python_behavior_module(
    directory: Path, module: str, source: str, *names: str
) -> Iterator[Path]:
    """Write `source` as `module` in `directory`, import it here (this process validates
    payloads at trigger time), and unregister its behaviors `names` afterwards; a worker
    started with `FORCEBOT_BEHAVIOR_MODULES=module` and `PYTHONPATH=directory` loads it too."""
    (directory / f"{module}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(directory))
    importlib.import_module(module)
    try:
        yield directory
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(module, None)
        for name in names:
            unregister(name)
