"""OpenAPI 3.1 description of /api/v1, assembled from `document()` calls in each module."""

from __future__ import annotations

from typing import Any

_PATHS: dict[str, dict[str, Any]] = {}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
                "required": ["code", "message"],
            }
        },
    }
}


def document(
    path: str,
    method: str,
    summary: str,
    *,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    status: int = 200,
    params: list[dict[str, Any]] | None = None,
) -> None:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(status): {
                "description": "success",
                **({"content": {"application/json": {"schema": response}}} if response else {}),
            },
            "4XX": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    if request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request}},
        }
    if params:
        op["parameters"] = params
    _PATHS.setdefault(path, {})[method.lower()] = op


def schema(name: str, definition: dict[str, Any]) -> dict[str, str]:
    _SCHEMAS[name] = definition
    return {"$ref": f"#/components/schemas/{name}"}


def build_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Forcebot API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(_PATHS.items())),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


document("/openapi.json", "GET", "This document")
