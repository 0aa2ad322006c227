"""SPEC's JSON error body, shared by the API and the auth layer."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    return response
