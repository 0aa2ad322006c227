"""Admin settings: API tokens (list with last use, create shown once, revoke), change your
password, add an admin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from shared.auth import (
    AdminError,
    change_password,
    create_admin,
    create_api_token,
    revoke_api_token,
)
from shared.models import Admin, ApiToken

from ..auth import TOKEN_CACHE_SECONDS, forget_api_token
from ..db import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _page(status: int = 200, **context: Any) -> Any:
    session = db()
    tokens = session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).all()
    admins = session.scalars(select(Admin).order_by(Admin.email)).all()
    context.setdefault("problems", {})
    return render_template("admin/index.html", tokens=tokens, admins=admins, **context), status


def _problems(exc: AdminError) -> list[str]:
    return str(exc).split("; ")


@bp.get("/")
def index() -> Any:
    return _page()


@bp.post("/tokens")
def create_token() -> Any:
    session = db()
    name = request.form.get("name", "")
    try:
        token, plaintext = create_api_token(session, name)
    except AdminError as exc:
        session.rollback()
        return _page(422, problems={"token": _problems(exc)}, token_name=name)
    session.commit()
    # Shown in this response only: never flashed (the session cookie is signed, not secret).
    return _page(new_token=plaintext, new_token_name=token.name)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Any:
    session = db()
    token = revoke_api_token(session, token_id)
    if token is None:
        abort(404)
    session.commit()
    forget_api_token(token.id)
    flash(
        f"Revoked the token {token.name}; requests with it get 401 within "
        f"{TOKEN_CACHE_SECONDS:g} seconds.",
        "success",
    )
    return redirect(url_for("admin.index"))


@bp.post("/password")
def password() -> Any:
    session = db()
    try:
        change_password(
            session,
            int(current_user.id),
            request.form.get("current_password", ""),
            request.form.get("new_password", ""),
        )
    except AdminError as exc:
        session.rollback()
        return _page(422, problems={"password": _problems(exc)})
    session.commit()
    flash("Password changed.", "success")
    return redirect(url_for("admin.index"))


@bp.post("/admins")
def add_admin() -> Any:
    session = db()
    email = request.form.get("email", "")
    try:
        admin = create_admin(session, email, request.form.get("password", ""))
    except AdminError as exc:
        session.rollback()
        return _page(422, problems={"admin": _problems(exc)}, admin_email=email)
    session.commit()
    flash(f"Added the admin {admin.email}.", "success")
    return redirect(url_for("admin.index"))
