"""Declare an `/api/v1` operation once: its pydantic models validate it and document it.

Why a small registry of our own over pydantic's JSON Schema, rather than flask-openapi3 or
spectree: both replace Flask's routing or error handling with their own (flask-openapi3 its
own `APIBlueprint` and 422 body, spectree its own error list), and we must keep SPEC's error
shape `{"error": {"code", "message", "details"}}` with "path: message" details, our strict
query booleans, the 400-vs-422 split and the routing errors (404/405/413) the API already
answers. What they would add over `pydantic.json_schema.models_json_schema` is a few dozen
lines; what this module does is exactly that, and nothing else.

How to add a route (schedules, syncs, records, webhooks...)::

    from pydantic import Field
    from web.api import api
    from web.api.contract import Body, Query, QueryBool, Reply, integral, operation

    class ScheduleIn(Body):              # unknown fields are 422 (additionalProperties: false)
        behavior: str = Field(min_length=1, max_length=100)
        cron: str = Field(description="five-field cron expression")
        enabled: bool = True
        priority: Annotated[int, Field(ge=0, le=9), BeforeValidator(integral)] = 0

    class ScheduleOut(Reply):            # every field the route returns, nothing else
        id: int
        behavior: str
        cron: str
        enabled: bool

    class ScheduleFilter(Query):         # query strings; QueryBool takes only true/false/1/0
        enabled: QueryBool | None = None

    @operation(api, "POST", "/schedules", "Create a schedule",
               body=ScheduleIn, response=ScheduleOut, status=201, errors=(409,))
    def create_schedule(*, body: ScheduleIn) -> dict:
        ...                              # body is validated; raise ApiError for 404/409
        return schedule_to_dict(row)     # or a ScheduleOut; status comes from `status`

Path parameters come from the Flask rule (`<int:schedule_id>` becomes an integer from 0 to
2**31-1) and are passed by name; `body=` and `query=` are passed as keyword arguments.

What the registry guarantees:
- A body that is not a JSON object, not JSON at all, or not sent as `application/json` is 400;
  one that does not fit the model is 422 listing every problem as `path: message`
  (`payload.email: required`, `name: unknown field`). Bodies are validated in pydantic's strict
  mode: `"5"` is not an integer and `1` is not a boolean, as the document says.
- A query string that does not fit its model is 422 the same way. Unknown query parameters are
  ignored (as HTTP clients expect); booleans accept only `true/false/1/0` (QueryBool); a
  parameter sent empty (`?status=`) is validated like any other value, so it fails a
  `min_length=1` or an enum (422) instead of meaning "no filter".
- The OpenAPI 3.1 document (`build_document()`) lists every operation with its parameters,
  body, success response and the error responses, from the same models.
- Under `app.testing`, every success response is validated against its `response` model
  (a `Reply` forbids undeclared fields), so a handler that returns a field the model lacks
  fails the API tests instead of drifting from the document.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.json_schema import models_json_schema

from shared.validation import integral, problems_of

from .errors import json_body, validation_error

MAX_ID = 2**31 - 1  # ids are INTEGER columns (32-bit on PostgreSQL)
REF_TEMPLATE = "#/components/schemas/{model}"


class Body(BaseModel):
    """A JSON request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """A query string: unknown parameters are ignored, values arrive as text."""

    model_config = ConfigDict(extra="ignore")


class Reply(BaseModel):
    """A response body: declares every field the route returns (checked under app.testing)."""

    model_config = ConfigDict(extra="forbid")


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def _query_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("expected true, false, 1 or 0")


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
"""A query-string boolean: exactly `true`, `false`, `1` or `0`; anything else is 422."""


JsonInt = Annotated[int, BeforeValidator(integral)]
"""An integer in a JSON body: `37.0` is accepted (as 37); `2.5`, `"37"` and `true` are not.
With bounds, put them before the validator so they reach the document:
`Annotated[int, Field(ge=0, le=9), BeforeValidator(integral)]`."""


@dataclass
class Operation:
    method: str
    rule: str  # the Flask rule under the blueprint, e.g. /services/<int:service_id>
    summary: str
    description: str | None
    body: type[BaseModel] | None
    body_required: bool
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    also: tuple[int, ...]
    errors: tuple[int, ...]
    view: Callable[..., Any]
    path_params: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return re.sub(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", self.rule)

    @property
    def operation_id(self) -> str:
        return self.view.__name__


OPERATIONS: list[Operation] = []
# Error statuses every operation can answer: auth, bad JSON/content type, body too large.
COMMON_ERRORS = {
    400: "The body is not a JSON object, not JSON, or not sent as application/json",
    401: "Missing or invalid Bearer token",
    413: "The body is larger than the server accepts",
}
ERROR_TEXT = {
    404: "No such resource",
    409: "Conflicts with the resource's current state",
    422: "Validation failed: `details` lists every problem as `path: message`",
    502: "Salesforce did not answer as expected",
}


def operation(
    blueprint: Blueprint,
    method: str,
    rule: str,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    also: Iterable[int] = (),
    errors: Iterable[int] = (),
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view for `method rule` on `blueprint` and describe it in the document.

    The handler gets the path parameters by name, plus `body=` (an instance of `body`) and
    `query=` (an instance of `query`) when those are given. It returns a dict, a `Reply`, or
    None (for a status without content, e.g. 204); `(value, code)` answers with one of the
    other success statuses listed in `also` (same response model). 404 is documented for
    every route with a path parameter, 422 for every route with a body or query; list other
    statuses in `errors`.
    """
    method = method.upper()

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def view(**path_args: Any) -> Any:
            kwargs: dict[str, Any] = dict(path_args)
            problems: list[str] = []
            if query is not None:
                try:
                    kwargs["query"] = query.model_validate(request.args.to_dict())
                except ValidationError as exc:
                    problems += problems_of(exc)
            if body is not None:
                raw: Mapping[str, Any] = json_body() if body_required or request.data else {}
                try:
                    kwargs["body"] = body.model_validate(raw, strict=True)
                except ValidationError as exc:
                    problems += problems_of(exc)
            if problems:
                raise validation_error(problems)
            result = handler(**kwargs)
            code = status
            if isinstance(result, tuple):
                result, code = result
            if result is None:
                return "", code
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
            if response is not None and current_app.testing:
                response.model_validate(result)  # a drift between handler and model is a bug
            return jsonify(result), code

        blueprint.add_url_rule(rule, endpoint=handler.__name__, view_func=view, methods=[method])
        OPERATIONS.append(
            Operation(
                method=method,
                rule=rule,
                summary=summary,
                description=description,
                body=body,
                body_required=body_required,
                query=query,
                response=response,
                status=status,
                also=tuple(also),
                errors=tuple(errors),
                view=handler,
                path_params=_path_params(rule),
            )
        )
        return handler

    return decorator


def path_param_schema(converter: str | None, name: str) -> dict[str, Any]:
    if converter == "int":
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


PATH_PARAM_SCHEMAS: dict[str, dict[str, Any]] = {}
"""Schema overrides for string path parameters by name (e.g. a behavior name's pattern)."""


def _path_params(rule: str) -> list[dict[str, Any]]:
    params = []
    for converter, name in re.findall(r"<(?:([^:<>(]+)(?:\([^)]*\))?:)?([A-Za-z_]\w*)>", rule):
        schema = PATH_PARAM_SCHEMAS.get(name) or path_param_schema(converter or None, name)
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


ERROR_SCHEMA: dict[str, Any] = {
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
    "required": ["error"],
}


def build_document(extra_schemas: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation."""
    inputs: list[tuple[type[BaseModel], Any]] = []
    for op in OPERATIONS:
        for model, mode in ((op.body, "validation"), (op.query, "validation")):
            if model is not None:
                inputs.append((model, mode))
        if op.response is not None:
            inputs.append((op.response, "serialization"))
    key_map, defs = models_json_schema(list(dict.fromkeys(inputs)), ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, **defs.get("$defs", {})}
    if extra_schemas:
        schemas.update(extra_schemas)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _describe(op, key_map, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Forcebot API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _describe(op: Operation, key_map: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.description:
        doc["description"] = op.description
    params = list(op.path_params)
    if op.query is not None:
        ref = key_map[(op.query, "validation")]["$ref"]
        query_schema = schemas[ref.rsplit("/", 1)[1]]
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": key_map[(op.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        schema = key_map[(op.response, "serialization")]
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(code): success for code in (op.status, *op.also)}
    statuses = dict(COMMON_ERRORS)
    if op.path_params:
        statuses[404] = ERROR_TEXT[404]
    if op.body is not None or op.query is not None:
        statuses[422] = ERROR_TEXT[422]
    for code in op.errors:
        statuses[code] = ERROR_TEXT.get(code, "Error")
    if op.body is None:
        statuses.pop(413)
        if op.query is None:
            statuses.pop(400)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for code in sorted(statuses):
        responses[str(code)] = {"description": statuses[code], "content": error}
    doc["responses"] = responses
    return doc
