"""The schedules beat tick: fire due schedules, then send their runs to the workers."""

from __future__ import annotations

from shared.config import run_timings
from shared.schedules import dispatch_schedules

from ..beat import register
from ..celery_app import celery, runtime
from .runs import enqueue

TICK = "worker.schedules.tick"


@celery.task(name=TICK)
def tick() -> int:
    """Fire or skip every due schedule (safe from any number of beats); return runs sent."""
    rt = runtime()
    report = dispatch_schedules(rt.Session, default_max_attempts=rt.settings.run_max_attempts)
    for run_id in report.run_ids:  # after the commit, as a trigger does
        enqueue(run_id)
    return len(report.run_ids)


# The same short interval as the runs dispatcher: edits and enables take effect within it.
register("schedules-tick", TICK, run_timings().dispatch_every)
