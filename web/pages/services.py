"""Connected services pages: list, create, view, edit, delete (revoking linked accounts)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from shared.linking import delete_service
from shared.models import Account, Service
from shared.services import DEFAULTS, ServiceInvalid, create_service, update_service

from ..db import db, get_or_404, runtime, settings

bp = Blueprint("services", __name__, url_prefix="/services")

FORM_FIELDS = (
    "name",
    "client_id",
    "client_secret",
    "login_url",
    "api_version",
    "scopes",
    "session_timeout_minutes",
    "api_reserve_percent",
)


def _form_data(creating: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in FORM_FIELDS:
        value = request.form.get(key, "")
        if creating and value.strip() == "" and key in DEFAULTS:
            continue  # blank optional field: the default applies
        data[key] = value
    # An unticked checkbox is simply absent from the form.
    data["use_introspection"] = request.form.get("use_introspection") == "on"
    return data


def _get(service_id: int) -> Service:
    return get_or_404(Service, service_id)


def _form(service: Service | None, values: dict[str, Any], problems: list[str]) -> Any:
    """The create/edit form (422 when it lists problems); the client secret is never echoed."""
    values.pop("client_secret", None)
    page = render_template(
        "services/form.html",
        service=service,
        values=values,
        problems=problems,
        callback_url=settings().oauth_callback_url,
    )
    return page, 422 if problems else 200


@bp.get("")
def index() -> Any:
    session = db()
    services = session.scalars(select(Service).order_by(Service.name)).all()
    counts = dict(
        session.execute(select(Account.service_id, func.count()).group_by(Account.service_id)).all()
    )
    reauth = dict(
        session.execute(
            select(Account.service_id, func.count())
            .where(Account.status == "needs_reauth")
            .group_by(Account.service_id)
        ).all()
    )
    return render_template("services/index.html", services=services, counts=counts, reauth=reauth)


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    values: dict[str, Any] = dict(DEFAULTS)
    problems: list[str] = []
    if request.method == "POST":
        session = db()
        data = _form_data(creating=True)
        values.update(data)
        try:
            service = create_service(session, runtime().crypto, data)
        except ServiceInvalid as exc:
            session.rollback()
            problems = exc.problems
        else:
            session.commit()
            flash(f"Created service {service.name}. Now link an account.", "success")
            return redirect(url_for("services.detail", service_id=service.id))
    return _form(None, values, problems)


@bp.get("/<int:service_id>")
def detail(service_id: int) -> Any:
    service = _get(service_id)
    accounts = db().scalars(
        select(Account).where(Account.service_id == service.id).order_by(Account.name)
    )
    return render_template(
        "services/detail.html",
        service=service,
        accounts=list(accounts),
        callback_url=settings().oauth_callback_url,
    )


@bp.route("/<int:service_id>/edit", methods=["GET", "POST"])
def edit(service_id: int) -> Any:
    session = db()
    service = _get(service_id)
    problems: list[str] = []
    values: dict[str, Any] = {
        key: getattr(service, key) for key in FORM_FIELDS if key != "client_secret"
    }
    values["use_introspection"] = service.use_introspection
    if request.method == "POST":
        data = _form_data(creating=False)
        try:
            update_service(session, runtime().crypto, service, data)
        except ServiceInvalid as exc:
            session.rollback()
            problems = exc.problems
            values.update(data)
        else:
            session.commit()
            flash(f"Saved service {service.name}.", "success")
            return redirect(url_for("services.detail", service_id=service.id))
    return _form(service, values, problems)


@bp.post("/<int:service_id>/delete")
def delete(service_id: int) -> Any:
    session = db()
    service = _get(service_id)
    accounts = list(session.scalars(select(Account).where(Account.service_id == service.id)))
    if accounts and request.form.get("confirm") != "yes":
        return render_template("services/confirm_delete.html", service=service, accounts=accounts)
    name = service.name
    # Release the request's transaction: revoking talks to Salesforce.
    session.rollback()
    outcomes = delete_service(runtime(), service_id) or []
    failed = [o for o in outcomes if not o.revoked]
    message = f"Deleted service {name}"
    if outcomes:
        message += f" and revoked {len(outcomes) - len(failed)} of {len(outcomes)} accounts"
    flash(message + ".", "success")
    for outcome in failed:
        flash(
            f"{outcome.name}: {outcome.message}. Revoke it in Salesforce Setup "
            "(Connected Apps OAuth Usage).",
            "warning",
        )
    return redirect(url_for("services.index"))
