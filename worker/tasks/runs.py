"""Run tasks: execute one run, and the beat ticks that keep the outbox moving.

Tasks are thin: they take ids, claim with a compare-and-swap and delegate to `shared.runs`.
A message is only a hint that a run may be runnable, so sending one twice is harmless.
"""

from __future__ import annotations

import logging
import os
import socket

from shared import runs, syncs
from shared.config import run_timings

from ..beat import register
from ..celery_app import MAX_COUNTDOWN_SECONDS, celery, runtime

log = logging.getLogger("forcebot.runs")

EXECUTE = "worker.runs.execute"


def enqueue(run_id: int, countdown: float | None = None) -> bool:
    """Send the run to a worker; False when the broker is unreachable (the reconciler resends).

    Call only after the run row is committed. Countdowns are kept short: longer waits live in
    `runs.next_attempt_at` and the dispatcher sends the run when it is due.
    """
    options: dict[str, object] = {"retry": False}
    if countdown is not None and 0 < countdown <= MAX_COUNTDOWN_SECONDS:
        options["countdown"] = countdown
    try:
        celery.send_task(EXECUTE, args=[run_id], **options)
    except Exception:  # noqa: BLE001 - the row is committed; reconcile() sends it again
        log.warning("run=%s enqueue failed; the reconciler will send it", run_id, exc_info=True)
        return False
    return True


def _worker_name(task_hostname: str | None) -> str:
    return f"{task_hostname or socket.gethostname()}:{os.getpid()}"


@celery.task(name=EXECUTE, bind=True)
def execute(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """Claim and execute one run (a no-op when the run is not runnable now)."""
    rt = runtime()
    timings = run_timings()
    with rt.Session.begin() as session:
        claim = runs.claim_for_execution(
            session, run_id, _worker_name(self.request.hostname), timings=timings
        )
    if claim is None:
        return "skipped"
    if syncs.is_sync_run(claim.behavior_name):
        # `sync:<id>` runs go to the sync executor; the runs it triggers are sent per page.
        outcome = syncs.execute_sync(rt, claim, timings=timings, on_queued=_send)
    else:
        outcome = runs.execute_claimed(rt, claim, timings=timings)
    if outcome.requeue_in is not None and outcome.requeue_in <= MAX_COUNTDOWN_SECONDS:
        # Short waits: a countdown saves a dispatcher tick; the dispatcher would send it too.
        enqueue(run_id, countdown=max(outcome.requeue_in, 0.01))
    return outcome.status


def _send(run_ids: list[int]) -> int:
    for run_id in run_ids:
        enqueue(run_id)
    return len(run_ids)


@celery.task(name="worker.runs.dispatch_due")
def dispatch_due() -> int:
    """Send retrying/waiting runs that are due (waiting ones only once /limits shows room).

    Each tick also looks for the broker's marker key: when it is gone the broker was flushed or
    restarted empty, and every queued run is sent again at once instead of after the
    reconciler's `queued_after` threshold (which stays for single lost messages).
    """
    rt = runtime()
    ids = runs.dispatch_due(rt)
    try:
        emptied = runs.broker_was_emptied(rt.redis)
    except Exception:  # noqa: BLE001 - Redis is down: the next tick looks again
        log.warning("broker marker check failed", exc_info=True)
        emptied = False
    if emptied:
        ids += runs.queued_runs(rt)
    return _send(ids)


@celery.task(name="worker.runs.reconcile")
def reconcile() -> int:
    """Send again runs left queued too long and runs whose worker stopped heart-beating."""
    return _send(runs.reconcile(runtime()))


@celery.task(name="worker.runs.prune")
def prune() -> int:
    """Delete finished runs older than FORCEBOT_RUN_RETENTION_DAYS."""
    rt = runtime()
    deleted = runs.prune_old_runs(rt, rt.settings.run_retention_days)
    if deleted:
        log.info("pruned runs=%s", deleted)
    return deleted


_timings = run_timings()
register("runs-dispatch-due", "worker.runs.dispatch_due", _timings.dispatch_every)
register("runs-reconcile", "worker.runs.reconcile", _timings.reconcile_every)
register("runs-prune", "worker.runs.prune", _timings.prune_every)
