"""Sync tasks: the beat tick that starts due scheduled syncs (execution is `runs.execute`)."""

from __future__ import annotations

from shared.syncs.schedule import fire_due

from ..beat import register
from ..celery_app import celery, runtime
from .runs import enqueue

register("syncs-fire-due", "worker.syncs.fire_due", 5)


@celery.task(name="worker.syncs.fire_due")
def fire_due_syncs() -> int:
    """Start a run of each sync whose next slot has come (one per slot, never overlapping)."""
    run_ids = fire_due(runtime())
    for run_id in run_ids:
        enqueue(run_id)
    return len(run_ids)
