"""Sync pages: the list (with Run now), one sync (definition form with a describe field picker,
cursor, counts, live progress, run history) and the records browser.

Live progress: the sync's state and run history are htmx fragments polled every 2 seconds while a
run is active (10 otherwise) and swapped in place, so the definition form keeps what the user
typed; the progress bar is the run's `progress` (records of `total_size`), written after every
page. The list's table is polled the same way.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from shared import syncs
from shared.models import Account, Run, Sync
from shared.salesforce import errors
from shared.syncs import records as records_mod

from ..db import db, runtime
from . import live_template

bp = Blueprint("syncs", __name__, url_prefix="/syncs")
records_bp = Blueprint("records", __name__, url_prefix="/records")

TEXT = ("name", "object", "cron", "timezone", "on_change")
INTS = ("account_id", "every_seconds", "bulk_threshold", "lookback_seconds")


def _describe(account_id: int, obj: str) -> dict[str, str] | None:
    return syncs.describe_fields(runtime(), account_id, obj)


def _form_body(form: Any, *, partial: bool) -> tuple[dict[str, Any], list[str]]:
    """The form as an API body; a number that is not one is a problem, not a 500."""
    body: dict[str, Any] = {}
    problems: list[str] = []
    for key in TEXT:
        if key in form:
            body[key] = form[key].strip() or None
    for key in INTS:
        raw = form.get(key, "").strip()
        if raw:
            if not raw.isascii() or not raw.isdigit():
                problems.append(f"{key}: expected a whole number")
            else:
                body[key] = int(raw)
        elif key in form and key in ("every_seconds",):
            body[key] = None
    if "api" in form:
        body["api"] = form["api"]
    picked = form.getlist("field")
    typed = [f.strip() for f in form.get("fields", "").replace("\n", ",").split(",") if f.strip()]
    if picked or typed or not partial:
        body["fields"] = picked + [f for f in typed if f not in picked]
    body["enabled"] = form.get("enabled") == "on"
    if body.get("timezone") is None:
        body.pop("timezone", None)
    if not partial and body.get("name") is None:
        body.pop("name", None)
    return body, problems


@bp.get("/")
def index() -> Any:
    session = db()
    rows = [
        syncs.sync_to_dict(session, s) for s in session.scalars(select(Sync).order_by(Sync.name))
    ]
    accounts = {a.id: a for a in session.scalars(select(Account).order_by(Account.name))}
    return render_template(
        live_template("syncs/index.html", "syncs/_list.html"),
        syncs=rows,
        accounts=accounts,
        refresh=any(s["running"] for s in rows),
    )


@bp.post("/")
def create() -> Any:
    session = db()
    body, problems = _form_body(request.form, partial=False)
    if problems:
        flash("; ".join(problems), "error")
        return redirect(url_for("syncs.index"))
    session.commit()  # the login's read: no transaction stays open while Salesforce answers
    try:
        sync = syncs.create_sync(session, body, _describe)
    except syncs.DefinitionInvalid as exc:
        session.rollback()
        flash("Not saved: " + "; ".join(exc.problems), "error")
        return redirect(url_for("syncs.index"))
    session.commit()
    flash(f"Sync {sync.name} saved. Run it now to backfill {sync.object}.", "success")
    return redirect(url_for("syncs.detail", sync_id=sync.id))


@bp.get("/<int:sync_id>")
def detail(sync_id: int) -> Any:
    session = db()
    sync = session.get(Sync, sync_id)
    if sync is None:
        abort(404)
    data = syncs.sync_to_dict(session, sync)
    history = list(
        session.scalars(
            select(Run)
            .where(Run.behavior_name == syncs.behavior_name_for(sync_id))
            .order_by(Run.id.desc())
            .limit(20)
        )
    )
    account = session.get(Account, sync.account_id)
    if request.headers.get("HX-Request") == "true":
        # A poll of the live parts: no describe call to Salesforce for the field picker.
        return render_template(
            "syncs/_live_fragment.html", sync=data, history=history, account=account
        )
    session.commit()  # no transaction stays open while Salesforce answers (SQLite locks)
    available: dict[str, str] | None = None
    describe_error = None
    try:
        available = _describe(sync.account_id, sync.object)
    except (errors.SalesforceError, LookupError) as exc:
        describe_error = str(exc)
    return render_template(
        "syncs/detail.html",
        sync=data,
        history=history,
        available=available,
        describe_error=describe_error,
        account=account,
    )


@bp.post("/<int:sync_id>")
def update(sync_id: int) -> Any:
    session = db()
    sync = session.get(Sync, sync_id)
    if sync is None:
        abort(404)
    body, problems = _form_body(request.form, partial=True)
    if problems:
        flash("; ".join(problems), "error")
        return redirect(url_for("syncs.detail", sync_id=sync_id))
    try:
        syncs.update_sync(session, sync, body, _describe)
    except syncs.DefinitionInvalid as exc:
        session.rollback()
        flash("Not saved: " + "; ".join(exc.problems), "error")
        return redirect(url_for("syncs.detail", sync_id=sync_id))
    session.commit()
    flash("Saved.", "success")
    return redirect(url_for("syncs.detail", sync_id=sync_id))


@bp.post("/<int:sync_id>/run")
def run_now(sync_id: int) -> Any:
    session = db()
    if session.get(Sync, sync_id) is None:
        abort(404)
    try:
        run = syncs.start_sync_run(session, sync_id, full=request.form.get("full") == "on")
    except syncs.SyncRunning as exc:
        session.rollback()
        flash(f"Already running as run {exc.run_id}.", "error")
        return redirect(url_for("syncs.detail", sync_id=sync_id))
    session.commit()
    from worker.tasks.runs import enqueue

    enqueue(run.id)
    flash(f"Run {run.id} queued.", "success")
    return redirect(url_for("syncs.detail", sync_id=sync_id))


@records_bp.get("/", endpoint="index")
def index_records() -> Any:
    session = db()
    objects = sorted(set(session.scalars(select(Sync.object))))
    obj = request.args.get("object") or (objects[0] if objects else None)
    account_id = request.args.get("account_id", type=int)
    record_id = (request.args.get("id") or "").strip() or None
    include_deleted = request.args.get("include_deleted") == "on"
    cursor = request.args.get("cursor")
    after = records_mod.decode_cursor(cursor) if cursor else None
    page: list[Any] = []
    next_cursor = None
    if obj:
        page, next_cursor = records_mod.records_page(
            session,
            obj,
            account_id=account_id,
            include_deleted=include_deleted,
            record_id=record_id,
            after_seq=after,
            limit=50,
        )
    return render_template(
        "syncs/records.html",
        objects=objects,
        obj=obj,
        accounts=list(session.scalars(select(Account).order_by(Account.name))),
        account_id=account_id,
        record_id=record_id or "",
        include_deleted=include_deleted,
        records=[records_mod.record_to_dict(r) for r in page],
        next_cursor=next_cursor,
    )
