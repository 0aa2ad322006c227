"""Admin login (Flask-Login), Bearer API tokens, and deny-by-default route protection."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Regexp

from shared.auth import LoginThrottled, authenticate, verify_api_token
from shared.models import Admin, hash_token

from .db import db
from .errors import error_response

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."

# The only endpoints reachable without a session or token (and the API spec's own route is
# behind the token like the rest of the API).
PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "oauth.callback", "health.healthz", "health.readyz", "static", "pages.favicon"}
)
# API routes a logged-in browser may read with its session (the API reference page).
SESSION_API_ENDPOINTS = frozenset({"api.openapi_json"})
# Pages that also take an API token instead of a login: a Prometheus scraper has no session.
TOKEN_ENDPOINTS = frozenset({"metrics.metrics"})


# A token that checked out is trusted for this long by this process without a database read,
# so a trigger POST is one transaction (its own). A token revoked on the admin page stops
# working at once in the process that served the revoke, and within this many seconds in the
# other web processes (each gunicorn worker has its own cache). Unknown or revoked tokens are
# never cached: every such request reads the database.
TOKEN_CACHE_SECONDS = 5.0
TOKEN_CACHE_MAX = 1024
_CACHE_KEY = "forcebot.api_token_cache"


@dataclass(frozen=True)
class _Checked:
    token_id: int
    at: float  # time.monotonic() of the database read that found the token valid


def _token_cache() -> dict[str, _Checked]:
    cache: dict[str, _Checked] = current_app.extensions[_CACHE_KEY]
    return cache


def forget_api_token(token_id: int) -> None:
    """Drop a token from this process's cache (after revoking it)."""
    cache = _token_cache()
    for digest, checked in list(cache.items()):
        if checked.token_id == token_id:
            cache.pop(digest, None)


class AdminUser(UserMixin):
    def __init__(self, admin: Admin) -> None:
        self.id = str(admin.id)
        self.email = admin.email


@login_manager.user_loader
def _load_user(user_id: str) -> AdminUser | None:
    try:
        admin = db().get(Admin, int(user_id))
    except ValueError:
        return None
    return AdminUser(admin) if admin else None


def _unauthorized(message: str, challenge: str = 'Bearer realm="forcebot"') -> Any:
    response = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = challenge
    return response


def _authenticate_api() -> Any:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("send 'Authorization: Bearer <token>' (forcebot token create)")
    digest = hash_token(token)
    cache = _token_cache()
    checked = cache.get(digest)
    now = time.monotonic()
    if checked is not None and now - checked.at < TOKEN_CACHE_SECONDS:
        return None
    session = db()
    api_token = verify_api_token(session, token)
    if api_token is None:
        cache.pop(digest, None)
        return _unauthorized(
            "the API token is unknown or revoked",
            'Bearer realm="forcebot", error="invalid_token"',
        )
    if session.is_modified(api_token):
        # last_used_at (at most once a minute): committed here, because a read-only view
        # never commits. Otherwise the view continues this transaction.
        session.commit()
    if len(cache) >= TOKEN_CACHE_MAX:
        cache.clear()
    cache[digest] = _Checked(api_token.id, now)
    return None


def _require_authentication() -> Any:
    endpoint = request.endpoint
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    if endpoint in SESSION_API_ENDPOINTS and current_user.is_authenticated:
        return None
    if request.path.startswith("/api/") or (
        endpoint in TOKEN_ENDPOINTS and request.headers.get("Authorization")
    ):
        return _authenticate_api()
    if endpoint in TOKEN_ENDPOINTS and not current_user.is_authenticated:
        # A scraper cannot follow a login page: say what it needs instead.
        return _authenticate_api()
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.extensions[_CACHE_KEY] = {}
    app.before_request(_require_authentication)


class LoginForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[
            DataRequired(),
            Regexp(r"^[^@\s]+@[^@\s]+$", message="Enter an email address."),
        ],
    )
    password = PasswordField("Password", validators=[DataRequired()])


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//"):
        if not urlsplit(target).netloc:
            return target
    return url_for("pages.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("pages.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        session = db()
        try:
            admin = authenticate(session, form.email.data or "", form.password.data or "")
        except LoginThrottled as exc:
            session.commit()
            flash(str(exc), "error")
            return render_template("login.html", form=form), 429
        session.commit()
        if admin is not None:
            login_user(AdminUser(admin))
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong email or password.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))
