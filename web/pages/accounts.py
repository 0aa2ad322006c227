"""Connected accounts pages: list, detail, Link to Salesforce, Relink, Unlink, Refresh now."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

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


@bp.get("")
def index(form: dict[str, str] | None = None, problems: list[str] | None = None) -> Any:
    session_ = db()
    accounts = session_.scalars(select(Account).order_by(Account.name)).all()
    services = session_.scalars(select(Service).order_by(Service.name)).all()
    return render_template(
        live_template("accounts/index.html", "accounts/_table.html"),
        accounts=accounts,
        services=services,
        now=utcnow(),
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
    return render_template(
        "accounts/detail.html",
        account=account,
        service=account.service,
        behaviors=behaviors,
        recent=recent,
        now=utcnow(),
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
