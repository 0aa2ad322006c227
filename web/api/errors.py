"""API errors: `{"error": {"code", "message", "details"}}` with the right status."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from ..db import db
from ..errors import error_response

__all__ = [
    "ApiError",
    "error_response",
    "get_or_404",
    "json_body",
    "not_found",
    "validation_error",
]
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def validation_error(problems: list[str] | dict[str, Any], message: str | None = None) -> ApiError:
    """422 listing every problem."""
    count = len(problems)
    return ApiError(
        422,
        "validation_failed",
        message or f"{count} problem{'s' if count != 1 else ''} found; nothing was saved",
        problems,
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def get_or_404(model: type[T], ident: Any, what: str) -> T:
    """The row with this primary key, or a 404 "<what> not found"."""
    row = db().get(model, ident)
    if row is None:
        raise not_found(what)
    return row


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what was wrong."""
    from flask import request

    data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    if not data:
        raise ApiError(400, "bad_request", "expected a JSON object body")
    if not request.is_json:
        raise ApiError(
            400, "bad_request", "send the body as JSON with Content-Type: application/json"
        )
    try:
        # Not request.get_json(): its silent mode lets RecursionError (deeply nested arrays)
        # through as a 500, and it accepts NaN/Infinity, which are not JSON.
        body = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "bad_request", "the body is nested too deeply") from None
    except ValueError:  # also UnicodeDecodeError and the int digit limit
        raise ApiError(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "expected a JSON object body")
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
