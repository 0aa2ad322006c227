"""Execute one claimed sync run: the REST path, page by page, resumable.

A sync run is an ordinary run (claim, heartbeat, retries, quota waits, cancel, attempts) whose
`behavior_name` is the reserved `sync:<sync id>` (behavior names are `[a-z0-9-]`, so it can
never name a behavior); `is_sync_run()` lets the worker's execute task send it here instead of
to the behavior engine.

Each page is applied in one transaction that also saves the run's position (`progress.position`,
the last record of the page), advances the sync's cursor and writes the progress — fenced on
this worker still holding the run, so a worker that lost its lease stops instead of racing the
new owner. A run that crashed or was interrupted by a retryable fault continues from its saved
position with a new query (`nextRecordsUrl` locators do not survive a crash); because pages
are ordered by `(SystemModstamp, Id)` and the WHERE is strictly after the position, nothing is
skipped and nothing read twice. Which records are applied is at-least-once; what they change is
exactly-once (see `store`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select

from shared.behaviors.engine import Cancelled
from shared.behaviors.store import load_behavior
from shared.config import RunTimings, run_timings
from shared.models import Account, Run, Sync
from shared.models.runs import CANCELLED, FAILED, RUNNING, SUCCEEDED
from shared.runs import Claim, Heartbeat, Outcome, RunRecorder, classify, finish_run
from shared.salesforce import SalesforceClient, errors

from . import bulk
from .definitions import describe_fields
from .names import sync_id_of
from .soql import build_query, select_fields
from .store import OnChange, apply_page, parse_stamp

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("forcebot.syncs")

STEP = "pages"
COUNTS = ("pages", "records", "created", "updated", "deleted", "unchanged")


class _Lost(Exception):
    """This worker no longer holds the run (the reconciler gave it to another)."""


class _Stopped(Exception):
    """A user asked to cancel the run."""


class _Failed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}


def execute_sync(
    runtime: Runtime,
    claim: Claim,
    *,
    timings: RunTimings | None = None,
    on_queued: Callable[[list[int]], Any] | None = None,
    client_factory: Callable[..., Any] | None = None,
    batch_size: int | None = None,
) -> Outcome:
    """Run the claimed sync attempt and record how it ended (`finish_run`)."""
    timings = timings or run_timings()
    recorder = RunRecorder(runtime.Session, claim)
    sync_id = sync_id_of(claim.behavior_name)
    log.info("run=%s sync=%s attempt=%s status=running", claim.run_id, sync_id, claim.attempt)
    with Heartbeat(runtime.Session, claim, timings.heartbeat_every):
        try:
            progress = _run(
                runtime, claim, sync_id, recorder, on_queued, client_factory, batch_size
            )
        except _Lost:
            return Outcome("lost")
        except (_Stopped, bulk.Stopped, Cancelled):
            # Cancelled: asked before the step's start was recorded (finish then records
            # nothing, as there is no step row).
            recorder.finish(STEP, CANCELLED)
            outcome = Outcome(CANCELLED, error={"code": "cancelled", "message": "cancelled"})
        except _Failed as exc:
            outcome = Outcome(FAILED, error=exc.error)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            outcome = classify(claim, exc, recorder, timings)
            if recorder.current:
                recorder.finish(STEP, outcome.status, error=outcome.error)
        else:
            recorder.finish(STEP, SUCCEEDED, output={k: progress.get(k) for k in COUNTS})
            outcome = Outcome(SUCCEEDED, result={k: progress.get(k) for k in COUNTS})
    return finish_run(runtime, claim, outcome)


def _start(runtime: Runtime, claim: Claim, sync_id: int) -> tuple[Sync, dict[str, Any]]:
    """Load the sync; on a run's first execution choose where it starts and remember it."""
    with runtime.Session.begin() as session:
        sync = session.get(Sync, sync_id)
        if sync is None:
            raise _Failed("sync_not_found", f"sync {sync_id} no longer exists")
        run = session.get(Run, claim.run_id)
        assert run is not None
        progress = dict(run.progress or {})
        if "position" not in progress:
            full = bool((claim.payload or {}).get("full")) or sync.watermark_modstamp is None
            position = None
            if not full and sync.watermark_modstamp is not None:
                ts = sync.watermark_modstamp
                record_id = sync.watermark_id or ""
                if sync.lookback_seconds:
                    # Re-read a window behind the cursor: from (ts - lookback, before any Id).
                    ts, record_id = ts - timedelta(seconds=sync.lookback_seconds), ""
                position = {"system_modstamp": ts.isoformat(), "id": record_id}
            progress.update(
                {
                    "full": full,
                    "position": position,
                    "started_from": position,
                    "api": "rest",
                    "total_size": None,
                    **dict.fromkeys(COUNTS, 0),
                }
            )
            run.progress = progress
        sync.last_run_id = claim.run_id
        sync.last_run_at = run.started_at
        session.flush()
        session.expunge(sync)
        return sync, progress


def _position(progress: dict[str, Any]) -> tuple[datetime, str] | None:
    position = progress.get("position")
    if not position:
        return None
    return datetime.fromisoformat(position["system_modstamp"]), position["id"]


def _on_change(runtime: Runtime, sync: Sync) -> OnChange | None:
    if not sync.on_change:
        return None
    with runtime.Session() as session:
        behavior = load_behavior(session, sync.on_change)
        if behavior is None:
            raise _Failed(
                "behavior_not_found", f"on_change behavior {sync.on_change!r} does not exist"
            )
        account_id = None
        if behavior.account:
            account_id = session.scalar(select(Account.id).where(Account.name == behavior.account))
    return OnChange(sync.on_change, behavior.version, behavior.max_attempts or 5, account_id)


def _run(
    runtime: Runtime,
    claim: Claim,
    sync_id: int,
    recorder: RunRecorder,
    on_queued: Callable[[list[int]], Any] | None,
    client_factory: Callable[..., Any] | None,
    batch_size: int | None,
) -> dict[str, Any]:
    sync, progress = _start(runtime, claim, sync_id)
    on_change = _on_change(runtime, sync)
    names = select_fields(list(sync.fields or []))
    purpose = "scheduled" if (claim.payload or {}).get("scheduled") else "trigger"
    recorder.start(STEP, "sync")

    def on_exchange(summary: dict[str, Any]) -> None:
        recorder.exchange(STEP, summary)

    make = client_factory or SalesforceClient.for_account
    client = make(runtime, sync.account_id, on_exchange=on_exchange, purpose=purpose)
    recorder.account_id = sync.account_id
    position = _position(progress)
    if progress.get("total_size") is None:
        # With the cursor, so `auto` compares what this run would read with the threshold.
        counted = client.query_page(build_query(sync.object, names, position, count=True))
        progress["total_size"] = int(counted.get("totalSize") or 0) + int(progress["records"])
        if sync.api == "bulk" or (
            sync.api == "auto" and progress["total_size"] > sync.bulk_threshold
        ):
            progress["api"] = "bulk"
        _save_progress(runtime, claim, progress)
    if progress["api"] == "bulk":
        _bulk(
            runtime,
            claim,
            sync,
            names,
            position,
            progress,
            client,
            recorder,
            on_change,
            on_queued,
            client_factory,
        )
        return progress
    # Pages go through a client without `on_exchange`: its summaries parse and redact each
    # 2,000-record body only to cap it, a fifth of a sync's time. Each page is recorded here
    # with its method, URL, status and duration instead (the records themselves are stored).
    pages_client = make(runtime, sync.account_id, purpose=purpose)

    def get(soql: str | None = None, next_url: str | None = None) -> Any:
        """One page, in the fetching thread: (page, None, summary) or (None, error, summary)."""
        started = time.monotonic()
        status: int | None = 200
        error: str | None = None
        page: dict[str, Any] | None = None
        failure: BaseException | None = None
        try:
            if next_url:
                page = dict(pages_client.query_page(next_url=next_url, batch_size=batch_size))
            else:
                page = dict(
                    pages_client.query_page(soql, include_deleted=True, batch_size=batch_size)
                )
        except errors.SalesforceError as exc:
            status, error, failure = exc.status, str(exc), exc
        except BaseException as exc:  # noqa: BLE001 - raised again by `fetched`
            status, failure = None, exc
        url = next_url or f"{pages_client.base_path}/queryAll?q={quote(soql or '')}"
        summary = {
            "method": "GET",
            "url": url,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "error": error,
            "account_id": sync.account_id,
        }
        return page, failure, summary

    def fetched(result: Any) -> dict[str, Any]:
        """Record the GET (here, in the run's thread: the exchange is fenced on the run row,
        which the page being applied holds locked), then the page or its error."""
        page, failure, summary = result
        recorder.exchange(STEP, summary)
        if failure is not None:
            raise failure
        assert page is not None
        return page

    # While a page is applied, the next one is already being fetched (its URL is in the page):
    # the API's latency and the database's work overlap instead of adding up. At most two pages
    # are held, the one being applied and the one arriving; the cursor still moves only when a
    # page is applied, so a crash or a cancel loses at most the page in flight.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-{sync_id}-fetch")
    try:
        page = fetched(get(build_query(sync.object, names, position)))
        while True:
            records = list(page.get("records") or [])
            next_url = page.get("nextRecordsUrl")
            more = bool(next_url) and not page.get("done", True)
            ahead = pool.submit(get, next_url=next_url) if more else None
            page = {}  # the next page replaces it; nothing else holds the one applied
            if records:
                _apply(runtime, claim, sync, names, records, progress, on_change, on_queued)
            del records
            if ahead is None:
                return progress
            if recorder.should_stop():
                raise _Stopped()
            page = fetched(ahead.result())
    finally:
        # A failure, a cancel or a lost claim does not wait for the page in flight.
        pool.shutdown(wait=False, cancel_futures=True)


def _fenced_run(session: Any, claim: Claim) -> Run:
    """The run row, locked, if this worker still holds it; else _Lost."""
    run = session.get(Run, claim.run_id, with_for_update=True)
    if run is None or run.status != RUNNING or run.worker != claim.worker:
        raise _Lost()
    return run


def _save_progress(runtime: Runtime, claim: Claim, progress: dict[str, Any]) -> None:
    with runtime.Session.begin() as session:
        run = _fenced_run(session, claim)
        run.progress = {**(run.progress or {}), **progress}


def _bulk(
    runtime: Runtime,
    claim: Claim,
    sync: Sync,
    names: list[str],
    position: tuple[datetime, str] | None,
    progress: dict[str, Any],
    client: Any,
    recorder: RunRecorder,
    on_change: OnChange | None,
    on_queued: Callable[[list[int]], Any] | None,
    client_factory: Callable[..., Any] | None,
) -> None:
    state = dict(progress.get("bulk") or {})
    if not state.get("job_id"):
        soql = build_query(sync.object, names, position, ordered=False)
        state = {"job_id": bulk.create_job(client, soql), "locator": None, "max": None}
        progress["bulk"] = state
        _save_progress(runtime, claim, progress)
    bulk.wait_complete(client, state["job_id"], recorder.should_stop)
    types = describe_fields(runtime, sync.account_id, sync.object) or {}
    # Results are streamed (see bulk.result_pages) through a client without `on_exchange`,
    # whose summaries would read each body whole; each GET is recorded here instead.
    purpose = "scheduled" if (claim.payload or {}).get("scheduled") else "trigger"
    make = client_factory or SalesforceClient.for_account
    results_client = _Recorded(
        make(runtime, sync.account_id, purpose=purpose, http=bulk.StreamingSession()),
        recorder,
        sync.account_id,
    )
    chunks = bulk.result_pages(
        results_client,
        state["job_id"],
        state.get("locator"),
        types,
        skip=int(state.get("offset") or 0),
    )
    for chunk in chunks:
        records = chunk.records
        top = state.get("max")
        best = (top["system_modstamp"], top["id"]) if top else None
        for record in records:
            pair = (parse_stamp(record["SystemModstamp"]).isoformat(), record["Id"])
            if best is None or pair > best:
                best = pair
        if chunk.last:  # the page is applied: resume at the next one
            state = {**state, "locator": chunk.locator, "offset": 0}
        else:  # resume within this page, after the records applied so far
            state = {**state, "offset": chunk.offset}
        if best is not None:
            state["max"] = {"system_modstamp": best[0], "id": best[1]}
        progress["bulk"] = state
        final = chunk.last and chunk.locator is None
        cursor = (datetime.fromisoformat(best[0]), best[1]) if final and best else None
        _apply(
            runtime,
            claim,
            sync,
            names,
            records,
            progress,
            on_change,
            on_queued,
            cursor=cursor,
            page=chunk.last,
        )
        if not final and recorder.should_stop():
            raise _Stopped()


class _Recorded:
    """A client whose `request`s are recorded as exchanges with method, URL, status, duration
    (not bodies: a results body is streamed to the parser, not kept)."""

    def __init__(self, client: Any, recorder: RunRecorder, account_id: int) -> None:
        self.client, self.recorder, self.account_id = client, recorder, account_id
        self.base_path = client.base_path

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = self.client.request(method, url, **kwargs)
            status = response.status_code
            return response
        except errors.SalesforceError as exc:
            status, error = exc.status, str(exc)
            raise
        finally:
            self.recorder.exchange(
                STEP,
                {
                    "method": method,
                    "url": url,
                    "status": status,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "error": error,
                    "account_id": self.account_id,
                },
            )


def _apply(
    runtime: Runtime,
    claim: Claim,
    sync: Sync,
    names: list[str],
    records: list[dict[str, Any]],
    progress: dict[str, Any],
    on_change: OnChange | None,
    on_queued: Callable[[list[int]], Any] | None,
    *,
    cursor: tuple[datetime, str] | None | bool = True,
    page: bool = True,
) -> None:
    """One page in one transaction: records, triggered runs, cursor and progress.

    `cursor`: True (REST) moves the cursor to the page's last record; a pair moves it there;
    None leaves it (a Bulk results page that is not the last). `page` is False for a chunk
    that is not the end of its results page (pages are counted once).
    """
    if cursor is True:
        cursor = (
            (parse_stamp(records[-1]["SystemModstamp"]), records[-1]["Id"]) if records else None
        )
    with runtime.Session.begin() as session:
        run = _fenced_run(session, claim)
        result = apply_page(
            session,
            sync_id=sync.id,
            account_id=sync.account_id,
            obj=sync.object,
            names=names,
            records=records,
            on_change=on_change,
        )
        row = session.get(Sync, sync.id, with_for_update=True)
        if row is None:
            raise _Failed("sync_not_found", f"sync {sync.id} was deleted while it ran")
        if isinstance(cursor, tuple):
            ahead = row.watermark_modstamp is None or cursor > (
                row.watermark_modstamp,
                row.watermark_id or "",
            )
            if ahead:
                row.watermark_modstamp, row.watermark_id = cursor
            progress["position"] = {"system_modstamp": cursor[0].isoformat(), "id": cursor[1]}
        row.records_total += result.total_delta
        row.records_deleted += result.deleted_delta
        progress["pages"] += int(page)
        for key in ("records", "created", "updated", "deleted", "unchanged"):
            progress[key] += getattr(result, key)
        run.progress = {**(run.progress or {}), **progress}
    if result.queued_run_ids and on_queued is not None:
        on_queued(result.queued_run_ids)
