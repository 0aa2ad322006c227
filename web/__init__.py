"""The Flask app: pages, JSON API, OAuth callback, health and metrics.

`create_app(settings=None)` reads Settings from the environment when none are given. Every
route requires a logged-in admin (pages) or a Bearer token (`/api/v1`) except the few in
`PUBLIC_ENDPOINTS`: authentication is deny-by-default, checked before any view runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException

from shared.behaviors.registry import load_modules
from shared.config import Settings
from shared.runtime import Runtime

csrf = CSRFProtect()


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or Settings.from_env()
    runtime = runtime or Runtime(settings)

    app = Flask(__name__, static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_is_https,
        SESSION_COOKIE_NAME="forcebot_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.public_is_https,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["forcebot.settings"] = settings
    app.extensions["forcebot.runtime"] = runtime

    from worker.celery_app import configure

    configure(settings, runtime)
    load_modules(settings.behavior_modules)

    csrf.init_app(app)

    from . import auth, health, metrics, oauth, pages
    from .api import api
    from .pages import (
        accounts,
        admin,
        behaviors,
        runs,
        schedules,
        services,
        syncs,
        webhooks,
        workers,
    )

    auth.init_app(app)
    for module in (
        health,
        auth,
        pages,
        oauth,
        services,
        accounts,
        behaviors,
        schedules,
        webhooks,
        runs,
        workers,
        admin,
        metrics,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(syncs.bp)
    app.register_blueprint(syncs.records_bp)
    app.register_blueprint(api)
    csrf.exempt(api)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        # Routing errors (404, 405) happen before any blueprint is chosen; keep the API's
        # error format for them too.
        if request.path.startswith("/api/"):
            from .errors import http_error_response

            return http_error_response(exc)
        if exc.code is None or exc.code < 400:
            return exc  # redirects raised as exceptions (e.g. RequestRedirect)
        from flask import render_template
        from flask_wtf.csrf import CSRFError

        hint = None
        if isinstance(exc, CSRFError):
            hint = (
                "The form's security token is missing or expired (the page was open for a "
                "long time, or cookies are blocked). Go back, reload the page and try again."
            )
        return render_template("error.html", error=exc, hint=hint), exc.code

    @app.teardown_appcontext
    def _close_db(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"settings": settings}

    from . import filters

    filters.init_app(app)
    logging.getLogger("forcebot").setLevel(settings.log_level)
    return app
