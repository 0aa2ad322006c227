"""Pages: the dashboard lives here; each page group is its own blueprint module."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import func, select

from shared.models import Account, Behavior, Run, Service, utcnow

from ..db import db

bp = Blueprint("pages", __name__)


def live_template(page: str, fragment: str) -> str:
    """The fragment alone for htmx's polling requests (HX-Request), else the whole page.

    Live parts of a page poll their own URL every few seconds and swap the answer in place;
    without JavaScript the page still renders whole (and a reload shows the news)."""
    return fragment if request.headers.get("HX-Request") == "true" else page


@bp.get("/api-reference")
def api_reference() -> Any:
    """The API reference, rendered on the server from the same document as
    /api/v1/openapi.json (no CDN, no client-side renderer)."""
    from flask import current_app

    # Through the view, not its internals: whatever builds the document, this shows it.
    answer = current_app.make_response(current_app.view_functions["api.openapi_json"]())
    document = answer.get_json()
    return render_template("api_reference.html", doc=document)


@bp.get("/favicon.ico")
def favicon() -> Any:
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/")
def index() -> Any:
    session = db()
    counts = {
        "services": session.scalar(select(func.count()).select_from(Service)) or 0,
        "accounts": session.scalar(select(func.count()).select_from(Account)) or 0,
        "behaviors": session.scalar(select(func.count()).select_from(Behavior)) or 0,
    }
    by_status = dict(session.execute(select(Run.status, func.count()).group_by(Run.status)).all())
    recent = session.scalars(select(Run).order_by(Run.id.desc()).limit(10)).all()
    # What needs a person now: accounts Salesforce stopped trusting, and the oldest queued run
    # (a stuck queue means no worker is taking work).
    attention = session.scalars(
        select(Account).where(Account.status == "needs_reauth").order_by(Account.name)
    ).all()
    oldest_queued = session.scalar(
        select(
            func.min(func.coalesce(Run.queued_at, Run.created_at), type_=Run.created_at.type)
        ).where(Run.status == "queued")
    )
    return render_template(
        live_template("index.html", "_dashboard.html"),
        counts=counts,
        by_status=by_status,
        recent=recent,
        attention=attention,
        oldest_queued=oldest_queued,
        queued_seconds=(utcnow() - oldest_queued).total_seconds() if oldest_queued else 0,
    )
