"""Schedules pages: list with enable toggles, create/edit with inline problems and a live
preview of the next three fire times, delete. Saving goes through shared.schedules, so the
page, the API and package import validate alike; changes take effect at the next tick."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from shared.models import Behavior, Schedule
from shared.schedules import (
    ScheduleInvalid,
    TimingError,
    delete_schedule,
    describe,
    last_runs,
    preview,
    save_schedule,
    schedule_to_dict,
)
from shared.schedules.timing import cron_problem, zone

from ..db import db, get_or_404
from . import live_template

bp = Blueprint("schedules", __name__, url_prefix="/schedules")

COMMON_ZONES = ("UTC", "Europe/London", "Europe/Paris", "America/New_York", "America/Chicago",
                "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney")  # fmt: skip


def _form_data() -> tuple[dict[str, Any], list[str]]:
    """The form as a schedule body, and problems only the form can have (bad JSON, bad number)."""
    form = request.form
    problems: list[str] = []
    data: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "behavior": form.get("behavior", "").strip(),
        "timezone": form.get("timezone", "").strip() or "UTC",
        "enabled": form.get("enabled") == "on",
    }
    if form.get("kind") == "every":
        raw = form.get("every_seconds", "").strip()
        data["every_seconds"] = int(raw) if raw.isascii() and raw.isdigit() else raw or None
        data["cron"] = None
    else:
        data["cron"] = form.get("cron", "").strip() or None
        data["every_seconds"] = None
    text = form.get("payload", "").strip() or "{}"
    try:
        data["payload"] = json.loads(text)
    except ValueError:
        problems.append('payload: not valid JSON (write an object such as {"n": 1})')
        data["payload"] = {}
    return data, problems


def _values(schedule: Schedule | None) -> dict[str, Any]:
    if schedule is None:
        return {"timezone": "UTC", "enabled": True, "kind": "cron", "payload": "{}"}
    return {
        "name": schedule.name,
        "behavior": schedule.behavior_name,
        "cron": schedule.cron or "",
        "every_seconds": schedule.every_seconds or "",
        "kind": "every" if schedule.every_seconds else "cron",
        "timezone": schedule.timezone,
        "payload": json.dumps(schedule.payload or {}, indent=2),
        "enabled": schedule.enabled,
    }


def _form(schedule: Schedule | None) -> Any:
    values = _values(schedule)
    problems: list[str] = []
    if request.method == "POST":
        data, problems = _form_data()
        values.update({k: v for k, v in request.form.items() if k != "csrf_token"})
        values["enabled"] = data["enabled"]
        session = db()
        try:
            saved = save_schedule(session, data, schedule)
        except ScheduleInvalid as exc:
            problems = problems + exc.problems
        if problems:
            session.rollback()
        else:
            session.commit()
            flash(f"Saved schedule {saved.name}; it takes effect at the next tick.", "success")
            return redirect(url_for("schedules.index"))
    behaviors = db().scalars(select(Behavior.name).order_by(Behavior.name)).all()
    page = render_template(
        "schedules/form.html",
        schedule=schedule,
        values=values,
        problems=problems,
        behaviors=behaviors,
        zones=COMMON_ZONES,
    )
    return page, 422 if problems else 200


@bp.get("")
def index() -> Any:
    session = db()
    rows = list(session.scalars(select(Schedule).order_by(Schedule.name)))
    last = last_runs(session, rows)
    items = [schedule_to_dict(s, last.get(s.last_run_id or -1)) for s in rows]
    return render_template(
        live_template("schedules/index.html", "schedules/_list.html"), schedules=items
    )


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    return _form(None)


@bp.route("/<int:schedule_id>/edit", methods=["GET", "POST"])
def edit(schedule_id: int) -> Any:
    return _form(get_or_404(Schedule, schedule_id))


@bp.post("/<int:schedule_id>/toggle")
def toggle(schedule_id: int) -> Any:
    session = db()
    schedule = get_or_404(Schedule, schedule_id)
    try:
        save_schedule(session, {"enabled": not schedule.enabled}, schedule)
    except ScheduleInvalid as exc:  # e.g. its behavior was deleted: say so, change nothing
        session.rollback()
        flash(f"{schedule.name}: " + "; ".join(exc.problems), "error")
    else:
        session.commit()
        state = "enabled" if schedule.enabled else "disabled"
        flash(f"Schedule {schedule.name} {state}; it takes effect at the next tick.", "success")
    return redirect(url_for("schedules.index"))


@bp.post("/<int:schedule_id>/delete")
def delete(schedule_id: int) -> Any:
    session = db()
    schedule = get_or_404(Schedule, schedule_id)
    name = schedule.name
    delete_schedule(session, schedule)
    session.commit()
    flash(f"Deleted schedule {name}; its runs are kept.", "success")
    return redirect(url_for("schedules.index"))


@bp.get("/preview")
def preview_json() -> Any:
    """The form's live preview: next three fire times and a description, or the problems."""
    args = request.args
    kind = args.get("kind", "cron")
    timezone = args.get("timezone", "").strip() or "UTC"
    problems: list[str] = []
    data: dict[str, Any] = {"timezone": timezone, "cron": None, "every_seconds": None}
    try:
        zone(timezone)
    except TimingError as exc:
        problems.append(f"timezone: {exc}")
    if kind == "every":
        raw = args.get("every_seconds", "").strip()
        if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= 366 * 86400):
            problems.append("every_seconds: expected a positive whole number of seconds")
        else:
            data["every_seconds"] = int(raw)
    else:
        cron = " ".join(args.get("cron", "").split())
        problem = cron_problem(cron)
        if problem:
            problems.append(f"cron: {problem}")
        data["cron"] = cron
    if not problems:
        try:
            return jsonify({"next_runs": preview(data), "description": describe(data)})
        except TimingError as exc:
            problems.append(f"cron: {exc}")
    return jsonify({"problems": problems}), 422
