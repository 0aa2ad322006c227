"""Behaviors API: definitions validated on save (422 lists every problem), packages.

A definition is checked beyond what its JSON Schema can say (template syntax and names, the
sandbox, references between steps, that the named account exists), so a body that fits the
schema can still be 422; the `details` then list each problem by path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import Field, RootModel, StringConstraints, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.behaviors.definition import (
    MAX_SOURCE_CHARS,
    NAME_RE,
    definition_warnings,
    problem_lines,
)
from shared.behaviors.packages import import_package
from shared.behaviors.registry import registered
from shared.behaviors.store import (
    DefinitionInvalid,
    get_version,
    load_behavior,
    payload_json_schema,
    save_behavior,
)
from shared.models import Behavior, BehaviorVersion
from web.api import api
from web.api.contract import PATH_PARAM_SCHEMAS, Body, Query, Reply, operation
from web.api.errors import ApiError, not_found, validation_error
from web.db import db

# A name that does not match cannot exist, so it is 404 either way; the pattern says so.
PATH_PARAM_SCHEMAS["name"] = {"type": "string", "pattern": NAME_RE.pattern}
Format = Literal["yaml", "json"]
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class SourceText(Body):
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)] = Field(
        description="the definition as YAML or JSON text"
    )
    format: Format | None = Field(None, description="guessed from the text when left out")


class DefinitionBody(RootModel[SourceText | dict[str, Any]]):
    """`{"source", "format"}`, or the definition itself as a JSON object."""

    root: SourceText | dict[str, Any] = Field(
        description="`{source, format}` with YAML or JSON text, or the definition object "
        "(SPEC: Behavior definitions; GET /schemas/behavior.json)"
    )


class PackageBody(Body):
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)] | None = Field(
        None, description="the package file's YAML or JSON text"
    )
    format: Format | None = None
    account: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="replaces every behavior's account (it must exist)"
    )
    package: dict[str, Any] | None = Field(None, description="the package as a JSON object")
    update: bool = Field(False, description="also change existing behaviors that differ")
    dry_run: bool = Field(False, description="report what would happen; save nothing")

    model_config = {"json_schema_extra": {"anyOf": [{"required": ["source"]},
                                                    {"required": ["package"]}]}}  # fmt: skip

    @model_validator(mode="after")
    def _one_of(self) -> PackageBody:
        if self.package is None and self.source is None:
            raise ValueError("source: required (the package's YAML or JSON text)")
        return self


class BehaviorSummary(Reply):
    name: str
    description: str | None
    kind: Literal["definition", "python"]
    version: int | None
    versions: int
    account: str | None
    inputs: dict[str, Any]
    format: Format | None = None
    created_at: Time | None = None
    updated_at: Time | None = None


class BehaviorOut(BehaviorSummary):
    warnings: list[str] | None = Field(
        None,
        description="on save: advice that did not stop it, e.g. a soql: template that "
        "interpolates without | soql",
    )
    source: str | None = None
    definition: dict[str, Any] | None = None
    current_version: int | None = Field(None, description="the newest version (GET only)")
    payload_schema: dict[str, Any] | None = Field(
        None,
        description="GET only: the JSON Schema of a run's `payload`, generated from `inputs` "
        "(also served at GET /behaviors/{name}/payload.schema.json)",
    )


class BehaviorList(Reply):
    behaviors: list[BehaviorSummary]


class VersionQuery(Query):
    version: int | None = Field(None, ge=1, le=999_999_999)


class Imported(Reply):
    name: str
    status: Literal["created", "updated", "unchanged", "skipped"]
    version: int
    stored_version: int | None = None
    changed_keys: list[str] | None = None
    diff: str | None = Field(None, description="unified diff, stored → package")


class ImportedSchedule(Reply):
    name: str
    status: Literal["created", "updated", "unchanged"]
    id: int


class ImportReport(Reply):
    behaviors: list[Imported]
    created: int
    updated: int
    unchanged: int
    skipped: int
    dry_run: bool
    notes: list[str]
    schedules: list[ImportedSchedule] = Field(
        default_factory=list, description="the package's schedules: name and what happened"
    )


def _source_from_body(body: DefinitionBody) -> tuple[str, str | None]:
    """The definition text of a request: `{"source", "format"}` or the definition itself."""
    if isinstance(body.root, SourceText):
        return body.root.source, body.root.format
    return json.dumps(body.root, indent=2), "json"


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


def _save(body: DefinitionBody, expected_name: str | None = None) -> tuple[Any, ...]:
    source, fmt = _source_from_body(body)
    try:
        with _saving("the behavior was saved concurrently; try again") as session:
            return save_behavior(session, source, fmt, expected_name=expected_name)
    except ApiError as exc:
        # Text the client wrote: say on which line each problem is.
        if exc.status == 422 and isinstance(body.root, SourceText) and exc.details:
            exc.details = problem_lines(source, exc.details)
        raise


@operation(
    api,
    "POST",
    "/behaviors",
    "Create a behavior (422 lists every problem; nothing is saved)",
    body=DefinitionBody,
    response=BehaviorOut,
    status=201,
    errors=(409,),
)
def create_behavior(*, body: DefinitionBody) -> Any:
    source, fmt = _source_from_body(body)
    from shared.behaviors.definition import ParseError, parse_source

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
    behavior, version, _ = _save(body)
    return _saved(behavior, version)


@operation(api, "GET", "/behaviors", "List behaviors (stored definitions and Python behaviors)",
           response=BehaviorList)  # fmt: skip
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


def _saved(behavior: Behavior, version: BehaviorVersion) -> dict[str, Any]:
    data = behavior_to_dict(behavior, version, _version_count(behavior.id))
    data["warnings"] = definition_warnings(version.definition)
    return data


def _get(name: str) -> Behavior:
    behavior = db().scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        raise not_found(f'behavior "{name}"')
    return behavior


@operation(
    api,
    "GET",
    "/behaviors/<name>",
    "One behavior with its current source and definition (?version=N for an older one)",
    query=VersionQuery,
    response=BehaviorOut,
)
def get_behavior(name: str, *, query: VersionQuery) -> Any:
    behavior = db().scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        if name in registered():
            return {**_python_to_dict(name), "payload_schema": _payload_schema(name, None)}
        raise not_found(f'behavior "{name}"')
    version = get_version(db(), name, query.version)
    if version is None:
        raise not_found(f'version {query.version} of behavior "{name}"')
    data = behavior_to_dict(behavior, version, _version_count(behavior.id))
    data["version"] = version.version
    data["current_version"] = behavior.current_version
    data["payload_schema"] = _payload_schema(name, version.version)
    return data


def _payload_schema(name: str, version: int | None) -> dict[str, Any]:
    loaded = load_behavior(db(), name, version)
    if loaded is None or (version is not None and loaded.version != version):
        raise not_found(f'behavior "{name}"' if version is None else
                        f'version {version} of behavior "{name}"')  # fmt: skip
    return payload_json_schema(loaded)


@operation(
    api,
    "GET",
    "/behaviors/<name>/payload.schema.json",
    "JSON Schema of a run's payload for this behavior (?version=N for an older one)",
    description="Generated from the behavior's `inputs:`, with the same rules "
    "POST /behaviors/{name}/runs applies to `payload` (unknown inputs, required ones, "
    "types, enums, max_length). The size and nesting limits and real calendar dates are "
    "checked on the server only; its 422 lists each failure as `payload.<input>: ...`.",
    query=VersionQuery,
)
def behavior_payload_schema(name: str, *, query: VersionQuery) -> Any:
    return _payload_schema(name, query.version)


@operation(
    api,
    "PUT",
    "/behaviors/<name>",
    "Save a new version of a behavior (the name cannot change)",
    body=DefinitionBody,
    response=BehaviorOut,
    errors=(409,),
)
def update_behavior(name: str, *, body: DefinitionBody) -> Any:
    _get(name)
    behavior, version, _ = _save(body, expected_name=name)
    return _saved(behavior, version)


@operation(api, "DELETE", "/behaviors/<name>",
           "Delete a behavior and its versions (its runs are kept)", status=204)  # fmt: skip
def delete_behavior(name: str) -> None:
    session = db()
    session.delete(_get(name))
    session.commit()


@operation(
    api,
    "POST",
    "/packages",
    "Import a package of behaviors; an invalid package is rejected whole (422)",
    description="201 when a behavior was created, 200 when all existed (or on a dry run). "
    "Existing behaviors that differ are changed only with update: true (else skipped).",
    body=PackageBody,
    response=ImportReport,
    status=201,
    also=(200,),
    errors=(409,),
)
def import_package_route(*, body: PackageBody) -> Any:
    if body.package is not None:
        source, fmt = json.dumps(body.package), "json"
    else:
        assert body.source is not None  # the model requires one of the two
        source, fmt = body.source, body.format
    with _saving("behaviors were saved concurrently; try again") as session:
        report = import_package(
            session, source, fmt, account=body.account, update=body.update, dry_run=body.dry_run
        )
    created = report.count("created") and not report.dry_run
    return report.to_dict(), 201 if created else 200


@operation(
    api,
    "GET",
    "/schemas/behavior.json",
    "JSON Schema of a behavior definition or package (for editors' completion)",
    description="Generated from the same models that validate definitions on save; the "
    "checks a schema cannot state (templates, step references) still run on save.",
)
def behavior_schema() -> Any:
    from shared.behaviors.definition import definition_json_schema

    return definition_json_schema()
