"""The JSON API under /api/v1: Bearer-token auth (see web.auth), SPEC's error format.

Feature modules (`web.api.services`, `web.api.accounts`, ...) add their routes to the one
`api` blueprint and describe them with `openapi.document(...)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .errors import ApiError, error_response

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Ids are INTEGER columns (32-bit on PostgreSQL); a larger number in a URL cannot name a row,
# and the database drivers raise on it instead of finding nothing.
MAX_ID = 2**31 - 1


@api.before_request
def _check_path_values() -> None:
    # Runs after authentication (app before_request functions run before blueprint ones).
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise ApiError(404, "not_found", f"{name}: no such id")
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(404, "not_found", f"{name}: no such name")


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return error_response(exc.status, exc.code, exc.message, exc.details)


@api.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(exc.code or 500, code, exc.description or exc.name or "error")
    _copy_headers(exc, response)
    return response


def _copy_headers(exc: HTTPException, response: Any) -> None:
    """Keep the exception's own headers (405's Allow, 401's WWW-Authenticate) on the JSON body."""
    for key, value in exc.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value


@api.app_errorhandler(MethodNotAllowed)
def _method_not_allowed(exc: MethodNotAllowed) -> Any:
    # Routing errors happen before a blueprint is chosen, so the app's generic handler would
    # answer them and drop the Allow header that RFC 9110 requires on a 405.
    if not request.path.startswith(api.url_prefix or "/api/v1"):
        return exc
    return _http_error(exc)


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
