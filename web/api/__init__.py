"""The JSON API under /api/v1: Bearer-token auth (see web.auth), SPEC's error format.

Feature modules (`web.api.services`, `web.api.accounts`, ...) add their routes to the one
`api` blueprint with `web.api.contract.operation(...)` (see its docstring for how to add a
route), which validates bodies and queries with pydantic and documents them in
/api/v1/openapi.json.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import HTTPException

from ..errors import http_error_response
from .contract import MAX_ID, operation
from .errors import ApiError, error_response

api = Blueprint("api", __name__, url_prefix="/api/v1")

# Ids are INTEGER columns (32-bit on PostgreSQL); a larger number in a URL cannot name a row,
# and the database drivers raise on it instead of finding nothing.


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
    return http_error_response(exc)


@api.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    import logging

    logging.getLogger("forcebot.api").exception("unhandled API error")
    return error_response(500, "internal_error", "an unexpected error occurred; see the server log")


@operation(api, "GET", "/openapi.json", "This document")
def openapi_json() -> Any:
    from .contract import build_document

    return build_document()


# The route modules add themselves to `api` when imported.
from . import (  # noqa: E402, F401
    accounts,
    behaviors,
    records,
    runs,
    schedules,
    services,
    syncs,
    webhooks,
)
