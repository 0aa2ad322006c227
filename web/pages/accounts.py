"""Connected accounts pages: list, detail, Link to Salesforce, Relink, Unlink, Refresh now.

The 24-hour API-usage chart is drawn on the server as an inline SVG (as the workers page's
chart is) from the samples beat records every 5 minutes (`shared.usage`): one bar per sample,
its height the daily requests used as Salesforce last reported them, against the allocation
(the top of the chart) and the reserve line above which scheduled work waits.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from markupsafe import Markup
from sqlalchemy import select

from shared import usage
from shared.linking import LinkInvalid, start_link, unlink_account
from shared.models import Account, Behavior, BehaviorVersion, Run, Service, utcnow

from ..db import db, get_or_404, runtime, settings
from ..oauth import BINDING_KEY
from . import live_template

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _get(account_id: int) -> Account:
    return get_or_404(Account, account_id)


def _release(account_id: int) -> str:
    """The account's name (404 if unknown), then end the request's transaction: the caller
    talks to Salesforce and must not hold the database (on SQLite, the write lock) meanwhile."""
    name = _get(account_id).name
    db().rollback()
    return name


def _browser_binding() -> str:
    """This browser session's link binding secret (one per session, so parallel tabs work)."""
    value = session.get(BINDING_KEY)
    if not value:
        value = secrets.token_urlsafe(32)
        session[BINDING_KEY] = value
    return str(value)


def _back() -> Any:
    # Only same-site paths: the referrer is attacker-influenced.
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if parts.netloc == request.host and parts.path.startswith("/"):
        return redirect(parts.path)
    return redirect(url_for("accounts.index"))


def usage_chart(
    samples: list[usage.Sample],
    now: datetime,
    reserve_percent: int = 0,
    *,
    width: int = 720,
    height: int = 120,
    compact: bool = False,
    element_id: str | None = None,
) -> Markup | None:
    """Bars of requests used over the last 24 hours (None without samples).

    x is time (the last `usage.CHART_SPAN` up to `now`), y runs from 0 to the largest
    allocation among the samples; a dashed line marks the reserve. `compact` drops the labels
    (the accounts table's sparkline)."""
    start = now - usage.CHART_SPAN
    shown = [s for s in samples if s.at >= start]
    if not shown:
        return None
    top = max(s.max for s in shown) or 1
    span = usage.CHART_SPAN.total_seconds()
    bar = max(width * usage.SAMPLE_EVERY.total_seconds() / span, 1.0)
    pad = 0 if compact else 20
    label = (
        f"API requests used, last 24 hours: {shown[-1].used} of {shown[-1].max} at "
        f"{shown[-1].at:%H:%M} UTC"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + pad}" '
        f'width="{"100%" if not compact else width}" role="img" aria-label="{label}" '
        f'class="usage-chart{" compact" if compact else ""}"'
        + (f' id="{element_id}"' if element_id else "")
        + ">",
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#dde2e8"/>',
    ]
    if reserve_percent:
        y = height * reserve_percent / 100
        parts.append(
            f'<line class="reserve" x1="0" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" '
            'stroke="#9a6700" stroke-dasharray="4 3"/>'
        )
    limit = top * (100 - reserve_percent) / 100
    for sample in shown:
        x = width * (sample.at - start).total_seconds() / span
        h = height * min(sample.used, top) / top
        state = "spent" if sample.used >= sample.max else "above" if sample.used >= limit else "ok"
        colour = {"spent": "#b3261e", "above": "#9a6700", "ok": "#0b5cad"}[state]
        parts.append(
            f'<rect class="sample {state}" x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{sample.at:%H:%M} UTC: '
            f"{sample.used} / {sample.max}</title></rect>"
        )
    if not compact:
        parts.append(f'<text x="2" y="10" font-size="10" fill="#5b6675">{top}</text>')
        parts.append(
            f'<text x="0" y="{height + 15}" font-size="10" fill="#5b6675">-24 h</text>'
            f'<text x="{width}" y="{height + 15}" font-size="10" fill="#5b6675" '
            'text-anchor="end">now</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _charts(accounts: list[Account], now: datetime, **options: Any) -> dict[int, Markup | None]:
    samples = usage.samples_by_account(db(), [a.id for a in accounts], now - usage.CHART_SPAN)
    return {
        account.id: usage_chart(
            samples.get(account.id, []),
            now,
            account.service.api_reserve_percent or 0,
            **options,
        )
        for account in accounts
    }


@bp.get("")
def index(form: dict[str, str] | None = None, problems: list[str] | None = None) -> Any:
    session_ = db()
    accounts = list(session_.scalars(select(Account).order_by(Account.name)))
    services = session_.scalars(select(Service).order_by(Service.name)).all()
    now = utcnow()
    return render_template(
        live_template("accounts/index.html", "accounts/_table.html"),
        accounts=accounts,
        services=services,
        charts=_charts(accounts, now, width=144, height=24, compact=True),
        sample_minutes=int(usage.SAMPLE_EVERY.total_seconds() // 60),
        now=now,
        form=form,
        problems=problems,
    )


@bp.get("/<int:account_id>")
def detail(account_id: int) -> Any:
    account = _get(account_id)
    session_ = db()
    # Which behaviors name this account, and what ran on it lately: what breaks if it is down.
    current = session_.execute(
        select(Behavior.name, BehaviorVersion.definition)
        .join(BehaviorVersion, BehaviorVersion.behavior_id == Behavior.id)
        .where(BehaviorVersion.version == Behavior.current_version)
        .order_by(Behavior.name)
    )
    behaviors = [
        name for name, definition in current if (definition or {}).get("account") == account.name
    ]
    recent = session_.scalars(
        select(Run).where(Run.account_id == account.id).order_by(Run.id.desc()).limit(10)
    ).all()
    now = utcnow()
    return render_template(
        "accounts/detail.html",
        account=account,
        service=account.service,
        behaviors=behaviors,
        recent=recent,
        chart=_charts([account], now, element_id="usage-chart")[account.id],
        sample_minutes=int(usage.SAMPLE_EVERY.total_seconds() // 60),
        now=now,
    )


def _start(service_id: Any, name: Any, *, keep_form: bool = False) -> Any:
    """Start linking; on bad input flash and go back, or (`keep_form`, the link form) show the
    form again with what the user chose and typed."""
    session_ = db()
    try:
        started = start_link(
            session_,
            runtime().crypto,
            settings().oauth_callback_url,
            service_id,
            name,
            session_binding=_browser_binding(),
        )
    except LinkInvalid as exc:
        session_.rollback()
        if keep_form:
            form = {"service_id": str(service_id), "name": str(name)}
            return index(form=form, problems=exc.problems), 422
        for problem in exc.problems:
            flash(f"Cannot link: {problem}", "error")
        return _back()
    session_.commit()
    return redirect(started.authorize_url, code=303)


@bp.post("/link")
def link() -> Any:
    return _start(request.form.get("service_id", ""), request.form.get("name", ""), keep_form=True)


@bp.post("/<int:account_id>/relink")
def relink(account_id: int) -> Any:
    account = _get(account_id)
    return _start(account.service_id, account.name)


@bp.post("/<int:account_id>/unlink")
def unlink(account_id: int) -> Any:
    _release(account_id)
    outcome = unlink_account(runtime(), account_id)
    if outcome is None:
        abort(404)
    if outcome.revoked:
        flash(f"Unlinked {outcome.name}: revoked at Salesforce and deleted.", "success")
    else:
        flash(
            f"Deleted {outcome.name}, but {outcome.message}. Revoke its access in Salesforce "
            "Setup (Connected Apps OAuth Usage).",
            "warning",
        )
    return redirect(url_for("accounts.index"))


@bp.post("/<int:account_id>/refresh")
def refresh(account_id: int) -> Any:
    name = _release(account_id)
    from shared.salesforce.auth import refresh_account
    from shared.salesforce.errors import SalesforceError

    try:
        refresh_account(runtime(), account_id, force=True)
    except SalesforceError as exc:
        flash(f"Refreshing {name} failed: {exc.message}", "error")
    else:
        flash(f"Refreshed the access token of {name}.", "success")
    return redirect(url_for("accounts.detail", account_id=account_id))


@bp.post("/<int:account_id>/test")
def test_connection(account_id: int) -> Any:
    name = _release(account_id)
    from shared.salesforce.client import SalesforceClient
    from shared.salesforce.errors import SalesforceError

    try:
        limits = SalesforceClient.for_account(runtime(), account_id, timeout=15.0).limits()
    except SalesforceError as exc:
        flash(f"Connection test of {name} failed: {exc.message}", "error")
    else:
        daily = limits.get("DailyApiRequests") or {}
        remaining, maximum = daily.get("Remaining"), daily.get("Max")
        flash(f"{name} is connected: {remaining} of {maximum} daily API requests left.", "success")
    return redirect(url_for("accounts.detail", account_id=account_id))
