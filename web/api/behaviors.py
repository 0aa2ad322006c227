"""Behaviors API: definitions validated on save (422 lists every problem), packages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.behaviors.packages import import_package
from shared.behaviors.registry import registered
from shared.behaviors.store import DefinitionInvalid, get_version, save_behavior
from shared.models import Behavior, BehaviorVersion
from web.api import api
from web.api.errors import ApiError, json_body, not_found, validation_error
from web.api.openapi import document, schema
from web.db import db

BEHAVIOR = schema(
    "Behavior",
    {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": ["string", "null"]},
            "kind": {"type": "string", "enum": ["definition", "python"]},
            "version": {"type": ["integer", "null"]},
            "versions": {"type": "integer"},
            "account": {"type": ["string", "null"]},
            "inputs": {"type": "object"},
            "source": {"type": "string"},
            "format": {"type": "string", "enum": ["yaml", "json"]},
            "definition": {"type": "object"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)
DEFINITION_BODY = {
    "oneOf": [
        {"type": "object", "description": "a behavior definition (SPEC: Behavior definitions)"},
        {
            "type": "object",
            "properties": {
                "source": {"type": "string", "description": "YAML or JSON text"},
                "format": {"type": "string", "enum": ["yaml", "json"]},
            },
            "required": ["source"],
        },
    ]
}
PACKAGE_BODY = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "description": "the package file's YAML or JSON text"},
        "format": {"type": "string", "enum": ["yaml", "json"]},
        "account": {"type": "string", "description": "replaces every behavior's account"},
        "package": {"type": "object", "description": "the package as a JSON object instead"},
    },
}
IMPORT_REPORT = schema(
    "PackageImport",
    {
        "type": "object",
        "properties": {
            "behaviors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "status": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                        "version": {"type": "integer"},
                    },
                },
            },
            "created": {"type": "integer"},
            "updated": {"type": "integer"},
            "unchanged": {"type": "integer"},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    },
)
NAME_PARAM = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _source_from_body(body: dict[str, Any]) -> tuple[str, str | None]:
    """The definition text of a request: `{"source", "format"}` or the definition itself."""
    if "source" in body and "steps" not in body:
        source = body["source"]
        fmt = body.get("format")
        if not isinstance(source, str):
            raise validation_error(["source: expected YAML or JSON text"])
        if fmt is not None and fmt not in ("yaml", "json"):
            raise validation_error(['format: must be "yaml" or "json"'])
        return source, fmt
    return json.dumps(body, indent=2), "json"


def behavior_to_dict(behavior: Behavior, version: BehaviorVersion | None, versions: int) -> dict:
    definition = version.definition if version else {}
    return {
        "name": behavior.name,
        "description": behavior.description,
        "kind": "definition",
        "version": behavior.current_version,
        "versions": versions,
        "account": definition.get("account"),
        "inputs": definition.get("inputs") or {},
        "source": version.source if version else "",
        "format": version.source_format if version else "yaml",
        "definition": definition,
        "created_at": behavior.created_at.isoformat(),
        "updated_at": behavior.updated_at.isoformat(),
    }


def _python_to_dict(name: str) -> dict[str, Any]:
    item = registered()[name]
    return {
        "name": name,
        "description": item.description,
        "kind": "python",
        "version": None,
        "versions": 0,
        "account": item.account,
        "inputs": item.inputs,
    }


def _version_count(behavior_id: int) -> int:
    return (
        db().scalar(
            select(func.count())
            .select_from(BehaviorVersion)
            .where(BehaviorVersion.behavior_id == behavior_id)
        )
        or 0
    )


@contextmanager
def _saving(conflict: str) -> Iterator[Session]:
    """Yield the request session and commit; 422 listing every problem, or 409 `conflict`."""
    session = db()
    try:
        yield session
        session.commit()
    except DefinitionInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    except IntegrityError:
        # Two saves of one name at once: the unique constraint picked one winner.
        session.rollback()
        raise ApiError(409, "conflict", conflict) from None


def _save(source: str, fmt: str | None, expected_name: str | None = None) -> tuple[Any, ...]:
    with _saving("the behavior was saved concurrently; try again") as session:
        return save_behavior(session, source, fmt, expected_name=expected_name)


@api.post("/behaviors")
def create_behavior() -> Any:
    source, fmt = _source_from_body(json_body())
    from shared.behaviors.definition import NAME_RE, ParseError, parse_source

    try:
        parsed = parse_source(source, fmt)
    except ParseError:
        parsed = None
    # Only a valid name can clash; an invalid one (NUL, surrogates) must not reach a query.
    if (
        isinstance(parsed, dict)
        and isinstance(parsed.get("name"), str)
        and NAME_RE.match(parsed["name"])
    ):
        exists = db().scalar(select(Behavior.id).where(Behavior.name == parsed["name"]))
        if exists is not None:
            raise ApiError(
                409,
                "conflict",
                f'behavior "{parsed["name"]}" exists; PUT /behaviors/{parsed["name"]} changes it',
            )
    behavior, version, _ = _save(source, fmt)
    return behavior_to_dict(behavior, version, _version_count(behavior.id)), 201


document(
    "/behaviors",
    "POST",
    "Create a behavior (422 lists every problem; nothing is saved)",
    request=DEFINITION_BODY,
    response=BEHAVIOR,
    status=201,
)


@api.get("/behaviors")
def list_behaviors() -> Any:
    session = db()
    items = []
    for behavior in session.scalars(select(Behavior).order_by(Behavior.name)):
        version = get_version(session, behavior.name)
        entry = behavior_to_dict(behavior, version, _version_count(behavior.id))
        for key in ("source", "definition"):
            entry.pop(key)
        items.append(entry)
    stored = {item["name"] for item in items}
    items += [_python_to_dict(name) for name in sorted(registered()) if name not in stored]
    return {"behaviors": items}


document(
    "/behaviors",
    "GET",
    "List behaviors (stored definitions and Python behaviors)",
    response={"type": "object", "properties": {"behaviors": {"type": "array", "items": BEHAVIOR}}},
)


def _get(name: str) -> Behavior:
    behavior = db().scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        raise not_found(f'behavior "{name}"')
    return behavior


@api.get("/behaviors/<name>")
def get_behavior(name: str) -> Any:
    behavior = db().scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        if name in registered():
            return _python_to_dict(name)
        raise not_found(f'behavior "{name}"')
    version_arg = request.args.get("version")
    number = None
    if version_arg is not None:
        # ASCII digits that fit the column ("²".isdigit() is true, but int() refuses it).
        if not re.fullmatch(r"[0-9]{1,9}", version_arg):
            raise validation_error(["version: expected a whole number"])
        number = int(version_arg)
    version = get_version(db(), name, number)
    if version is None:
        raise not_found(f'version {version_arg} of behavior "{name}"')
    data = behavior_to_dict(behavior, version, _version_count(behavior.id))
    data["version"] = version.version
    data["current_version"] = behavior.current_version
    return data


document(
    "/behaviors/{name}",
    "GET",
    "One behavior with its current source and definition (?version=N for an older one)",
    response=BEHAVIOR,
    params=NAME_PARAM,
)


@api.put("/behaviors/<name>")
def update_behavior(name: str) -> Any:
    _get(name)
    source, fmt = _source_from_body(json_body())
    behavior, version, _ = _save(source, fmt, expected_name=name)
    return behavior_to_dict(behavior, version, _version_count(behavior.id))


document(
    "/behaviors/{name}",
    "PUT",
    "Save a new version of a behavior (the name cannot change)",
    request=DEFINITION_BODY,
    response=BEHAVIOR,
    params=NAME_PARAM,
)


@api.delete("/behaviors/<name>")
def delete_behavior(name: str) -> Any:
    session = db()
    session.delete(_get(name))
    session.commit()
    return "", 204


document(
    "/behaviors/{name}",
    "DELETE",
    "Delete a behavior and its versions (its runs are kept)",
    status=204,
    params=NAME_PARAM,
)


@api.post("/packages")
def import_package_route() -> Any:
    body = json_body()
    account = body.get("account")
    if account is not None and not isinstance(account, str):
        raise validation_error(["account: expected an account name"])
    if isinstance(body.get("package"), dict):
        source, fmt = json.dumps(body["package"]), "json"
    else:
        source, fmt = _source_from_body({k: v for k, v in body.items() if k != "account"})
        if "source" not in body:
            raise validation_error(["source: required (the package's YAML or JSON text)"])
    with _saving("behaviors were saved concurrently; try again") as session:
        report = import_package(session, source, fmt, account=account or None)
    status = 201 if report.count("created") else 200
    return report.to_dict(), status


document(
    "/packages",
    "POST",
    "Import a package of behaviors; an invalid package is rejected whole (422)",
    request=PACKAGE_BODY,
    response=IMPORT_REPORT,
)
