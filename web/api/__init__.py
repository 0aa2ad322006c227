"""The JSON API under /api/v1: Bearer-token auth (see web.auth), SPEC's error format.

Feature modules (`web.api.services`, `web.api.accounts`, ...) add their routes to the one
`api` blueprint and describe them with `openapi.document(...)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from .errors import ApiError, error_response

api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return error_response(exc.status, exc.code, exc.message, exc.details)


@api.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name or "error")


@api.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    import logging

    logging.getLogger("forcebot.api").exception("unhandled API error")
    return error_response(500, "internal_error", "an unexpected error occurred; see the server log")


@api.get("/openapi.json")
def openapi_json() -> Any:
    from .openapi import build_spec

    return jsonify(build_spec())


for _module in ("services", "accounts", "behaviors", "runs", "schedules", "syncs", "records"):
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_module}":
            raise
