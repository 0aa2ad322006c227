"""Presenting runs: SPEC's run JSON, loading a run whole, cursors and pages of runs."""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from shared.models import Run, RunStep, isoformat
from shared.models.runs import FAILED, RUNNING, SUCCEEDED


def step_to_dict(step: RunStep, attempt_number: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": step.key,
        "action": step.action,
        "status": step.status,
        "attempt": attempt_number,
        "started_at": isoformat(step.started_at),
        "finished_at": isoformat(step.finished_at),
    }
    if step.exchanges:
        last = step.exchanges[-1]
        data["request"] = f"{last.method} {last.url}"
        data["response_status"] = last.status
        data["duration_ms"] = last.duration_ms
        data["http"] = [
            {
                "method": x.method,
                "url": x.url,
                "status": x.status,
                "duration_ms": x.duration_ms,
                "error": x.error,
            }
            for x in step.exchanges
        ]
    if step.error:
        data["error"] = step.error
    return data


def run_to_dict(run: Run, *, include_steps: bool = True) -> dict[str, Any]:
    """SPEC's run JSON."""
    data: dict[str, Any] = {
        "id": run.id,
        "behavior": run.behavior_name,
        "behavior_version": run.behavior_version,
        "status": run.status,
        "trigger": run.trigger,
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "retries": run.retries,
        "payload": run.payload,
        "result": run.result,
        "error": run.error,
        "idempotency_key": run.idempotency_key,
        "replay_of": run.replay_of_id,
        "schedule_id": run.schedule_id,
        "slot": isoformat(run.slot),
        "sync_id": run.sync_id,
        "next_attempt_at": isoformat(run.next_attempt_at),
        "wait_reason": run.wait_reason,
        "cancel_requested": run.cancel_requested,
        # A cancel that came during the last step: the run ended before it could stop.
        "dry_run": run.trigger == "dry_run",  # writes were shown, not sent
        "finished_before_cancel": bool(run.cancel_requested) and run.status in (SUCCEEDED, FAILED),
        "current_step": (run.progress or {}).get("current_step") if run.status == RUNNING else None,
        "waits": (run.progress or {}).get("waits") or [],
        "created_at": isoformat(run.created_at),
        "started_at": isoformat(run.started_at),
        "finished_at": isoformat(run.finished_at),
    }
    if run.trigger == "sync":
        data["progress"] = {k: v for k, v in (run.progress or {}).items() if k != "waits"}
    if include_steps:
        numbers = {a.id: a.number for a in run.attempt_rows}
        data["steps"] = [step_to_dict(s, numbers.get(s.attempt_id)) for s in run.steps]
        data["attempt_history"] = [
            {
                "number": a.number,
                "status": a.status,
                "worker": a.worker,
                "started_at": isoformat(a.started_at),
                "finished_at": isoformat(a.finished_at),
                "error": a.error,
            }
            for a in run.attempt_rows
        ]
    return data


def load_run(session: Session, run_id: int) -> Run | None:
    """The run with its steps, exchanges and attempts loaded, for showing it whole."""
    return session.scalars(
        select(Run)
        .where(Run.id == run_id)
        .options(
            selectinload(Run.steps).selectinload(RunStep.exchanges),
            selectinload(Run.attempt_rows),
        )
    ).one_or_none()


def encode_cursor(run_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The id a cursor stands for, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # ASCII digits only (str.isdigit accepts "²", which int() refuses), and within the
    # INTEGER id column's range (PostgreSQL raises on a larger parameter).
    match = re.fullmatch(r"r([0-9]{1,10})", raw)
    if match is None or int(match.group(1)) >= 2**31:
        return None
    return int(match.group(1))


def list_runs_page(
    session: Session,
    *,
    behavior: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
    schedule_id: int | None = None,
    sync_id: int | None = None,
    trigger: str | None = None,
) -> tuple[list[Run], str | None]:
    """Runs newest first (keyset pagination on id), and the next page's cursor or None."""
    query = select(Run).order_by(Run.id.desc()).limit(limit + 1)
    if behavior:
        query = query.where(Run.behavior_name == behavior)
    if status:
        query = query.where(Run.status == status)
    if schedule_id is not None:
        query = query.where(Run.schedule_id == schedule_id)
    if before_id is not None:
        query = query.where(Run.id < before_id)
    if sync_id is not None:
        query = query.where(Run.sync_id == sync_id)
    if trigger:
        query = query.where(Run.trigger == trigger)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, encode_cursor(page[-1].id) if len(rows) > limit else None
