"""Run pages: the list with filters, and one run's steps, attempts and HTTP exchanges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from shared import runs
from shared.behaviors.store import get_version
from shared.models import Account, Run

from ..db import db, settings
from . import live_template

bp = Blueprint("runs", __name__, url_prefix="/runs")

PAGE_SIZE = 50


@bp.get("/")
def index() -> Any:
    status = request.args.get("status") or None
    if status not in runs.STATUSES:
        status = None
    behavior = request.args.get("behavior") or None
    cursor = request.args.get("cursor")
    before = runs.decode_cursor(cursor) if cursor else None
    page, next_cursor = runs.list_runs_page(
        db(), behavior=behavior, status=status, limit=PAGE_SIZE, before_id=before
    )
    behaviors = list(db().scalars(select(Run.behavior_name).distinct().order_by(Run.behavior_name)))
    active = db().scalar(select(func.count()).select_from(Run).where(Run.status.in_(runs.ACTIVE)))
    return render_template(
        live_template("runs/index.html", "runs/_list.html"),
        runs=page,
        statuses=runs.STATUSES,
        status=status,
        behavior=behavior,
        behaviors=behaviors,
        next_cursor=next_cursor,
        refresh=bool(active),
    )


def _run_or_404(run_id: int) -> Run:
    run = runs.load_run(db(), run_id)
    if run is None:
        abort(404)
    return run


@bp.get("/<int:run_id>")
def detail(run_id: int) -> Any:
    run = _run_or_404(run_id)
    numbers = {a.id: a.number for a in run.attempt_rows}
    data = runs.run_to_dict(run, include_steps=False)
    waits = [
        {**wait, "at": _parse_time(wait.get("at")), "until": _parse_time(wait.get("until"))}
        for wait in data.get("waits") or []
    ]
    account = db().get(Account, run.account_id) if run.account_id else None
    latest = get_version(db(), run.behavior_name) if run.behavior_version else None
    return render_template(
        live_template("runs/detail.html", "runs/_detail.html"),
        latest_version=latest.version if latest else None,
        run=run,
        data=data,
        waits=waits,
        account=account,
        attempt_of=numbers,
        refresh=run.status in runs.ACTIVE,
    )


def _parse_time(value: Any) -> Any:
    """An ISO timestamp from the run's progress as a datetime (for the `when` filter)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _change(run_id: int, action: str) -> Any:
    session = db()
    try:
        if action == "retry":
            run = runs.retry_run(session, run_id)
            message = f"Run {run_id} queued again"
            if request.form.get("version") == "latest":
                latest = get_version(session, run.behavior_name)
                if latest is None:
                    raise runs.BehaviorNotFound(run.behavior_name)
                # Recorded on the run: the worker's claim reads the version from the row.
                run.behavior_version = latest.version
            if run.behavior_version:
                message += f" with version {run.behavior_version}"
            message += "."
        elif action == "cancel":
            run = runs.cancel_run(session, run_id)
            message = (
                f"Run {run_id} will stop before its next step; if it is on its last step, "
                "it finishes first (the page then says so)."
                if run.status == "running"
                else f"Run {run_id} cancelled."
            )
        else:
            run = runs.replay_run(session, run_id, default_max_attempts=settings().run_max_attempts)
            message = f"Replayed run {run_id} as run {run.id}."
    except LookupError:
        session.rollback()
        abort(404)
    except runs.RunStateError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("runs.detail", run_id=run_id))
    except (runs.PayloadInvalid, runs.BehaviorNotFound) as exc:
        session.rollback()
        problems = getattr(exc, "problems", None) or ["the behavior no longer exists"]
        flash(f"Cannot {action}: " + "; ".join(problems), "error")
        return redirect(url_for("runs.detail", run_id=run_id))
    session.commit()
    if action in ("retry", "replay"):
        from worker.tasks.runs import enqueue

        enqueue(run.id)
    flash(message, "success")
    return redirect(url_for("runs.detail", run_id=run.id))


@bp.post("/<int:run_id>/retry")
def retry(run_id: int) -> Any:
    return _change(run_id, "retry")


@bp.post("/<int:run_id>/cancel")
def cancel(run_id: int) -> Any:
    return _change(run_id, "cancel")


@bp.post("/<int:run_id>/replay")
def replay(run_id: int) -> Any:
    return _change(run_id, "replay")
