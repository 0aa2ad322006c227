"""Pages: the dashboard lives here; each page group is its own blueprint module."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import func, select

from shared.models import Account, Behavior, Run, Service

from ..db import db

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> Any:
    session = db()
    counts = {
        "services": session.scalar(select(func.count()).select_from(Service)) or 0,
        "accounts": session.scalar(select(func.count()).select_from(Account)) or 0,
        "behaviors": session.scalar(select(func.count()).select_from(Behavior)) or 0,
    }
    rows = session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
    by_status = {status: count for status, count in rows}
    recent = session.scalars(select(Run).order_by(Run.id.desc()).limit(10)).all()
    return render_template("index.html", counts=counts, by_status=by_status, recent=recent)
