"""Save and load behaviors; validate trigger payloads against a behavior's inputs.

Every save of a definition is a new immutable `BehaviorVersion`; a run records the version
it ran. Stored definitions win over Python behaviors of the same name. Functions take the
caller's session and never commit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared.db import reading
from shared.models import Account, Behavior, BehaviorVersion, utcnow

from .definition import (
    DATE_PATTERN,
    DATETIME_PATTERN,
    MAX_NESTING,
    ParseError,
    account_names,
    detect_format,
    json_problems,
    nesting_depth,
    parse_source,
    text_problem,
    type_problem,
    validate_definition,
)
from .registry import registered

MAX_PAYLOAD_BYTES = 64 * 1024


class DefinitionInvalid(Exception):
    """A definition has problems; `.problems` lists each as "path: message"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedBehavior:
    name: str
    version: int | None
    definition: dict[str, Any] | None
    function: Callable[..., Any] | None
    inputs: dict[str, Any]
    account: str | None
    max_attempts: int | None
    timeout_seconds: float | None
    description: str | None


def account_problems(session: Session, definition: dict[str, Any]) -> list[str]:
    """Problems for account names in `definition` that no connected account has."""
    named = account_names(definition)
    if not named:
        return []
    # Names that cannot be stored are reported by validate_definition; never query with them.
    named = [(path, name) for path, name in named if text_problem(name) is None]
    if not named:
        return []
    wanted = {name for _, name in named}
    existing = set(session.scalars(select(Account.name).where(Account.name.in_(wanted))))
    return [f'{path}: unknown account "{name}"' for path, name in named if name not in existing]


def check_definition(
    session: Session, source: str, fmt: str | None = None, *, expected_name: str | None = None
) -> tuple[dict[str, Any], str]:
    """Validate everything save_behavior validates, without saving; raise DefinitionInvalid."""
    fmt = fmt or detect_format(source)
    try:
        definition = parse_source(source, fmt)
    except ParseError as exc:
        raise DefinitionInvalid([f"source: {exc}"]) from None
    problems = validate_definition(definition)
    if isinstance(definition, dict):
        problems += account_problems(session, definition)
        name = definition.get("name")
        if expected_name is not None and isinstance(name, str) and name != expected_name:
            problems.append(f'name: must stay "{expected_name}" (rename by creating a new one)')
    if problems:
        raise DefinitionInvalid(problems)
    return definition, fmt


def save_behavior(
    session: Session, source: str, fmt: str | None = None, *, expected_name: str | None = None
) -> tuple[Behavior, BehaviorVersion, bool]:
    """Validate and save `source` as a new version; returns (behavior, version, created)."""
    definition, fmt = check_definition(session, source, fmt, expected_name=expected_name)
    name = definition["name"]
    behavior = session.scalars(
        select(Behavior).where(Behavior.name == name).with_for_update()
    ).one_or_none()
    created = behavior is None
    if behavior is None:
        behavior = Behavior(name=name, current_version=0)
        session.add(behavior)
        session.flush()
    behavior.current_version = (behavior.current_version or 0) + 1
    behavior.description = definition.get("description")
    behavior.updated_at = utcnow()
    version = BehaviorVersion(
        behavior_id=behavior.id,
        version=behavior.current_version,
        source=source,
        source_format=fmt,
        definition=definition,
    )
    session.add(version)
    session.flush()
    return behavior, version, created


def get_version(session: Session, name: str, version: int | None = None) -> BehaviorVersion | None:
    """The stored version `version` (default: current) of the behavior `name`."""
    behavior = session.scalars(select(Behavior).where(Behavior.name == name)).one_or_none()
    if behavior is None:
        return None
    number = behavior.current_version if version is None else version
    return session.scalars(
        select(BehaviorVersion).where(
            BehaviorVersion.behavior_id == behavior.id, BehaviorVersion.version == number
        )
    ).one_or_none()


def load_behavior(session: Session, name: str, version: int | None = None) -> LoadedBehavior | None:
    """Load a stored definition (a given version, default current), else a Python behavior."""
    row = get_version(session, name, version)
    if row is not None:
        return stored_behavior(name, row.version, row.definition)
    python = registered().get(name)
    return python_behavior(name, python) if python is not None else None


def stored_behavior(name: str, version: int, definition: dict[str, Any]) -> LoadedBehavior:
    """A stored version's definition as the engine runs it."""
    return LoadedBehavior(
        name=name,
        version=version,
        definition=definition,
        function=None,
        inputs=dict(definition.get("inputs") or {}),
        account=definition.get("account"),
        max_attempts=definition.get("max_attempts"),
        timeout_seconds=definition.get("timeout_seconds"),
        description=definition.get("description"),
    )


def python_behavior(name: str, python: Any) -> LoadedBehavior:
    """A registered `@behavior` function as the engine runs it."""
    return LoadedBehavior(
        name=name,
        version=None,
        definition=None,
        function=python.function,
        inputs=dict(python.inputs),
        account=python.account,
        max_attempts=python.max_attempts,
        timeout_seconds=python.timeout_seconds,
        description=python.description,
    )


# Stored versions never change, so a worker keeps the ones it ran (a bounded LRU). The key
# must identify the version row itself, not only (name, version): a behavior deleted and made
# again starts its versions at 1.
CACHE_SIZE = 256
_cache: OrderedDict[Hashable, LoadedBehavior] = OrderedDict()
_cache_lock = threading.Lock()


def load_behavior_cached(
    factory: sessionmaker[Session], name: str, version: int | None, key: Hashable | None
) -> LoadedBehavior | None:
    """`load_behavior` through this process's cache of stored versions.

    `key` identifies the stored version row (e.g. its id and created_at, as a run's claim
    reads them); None (no stored version matched, or a Python behavior) loads without the
    cache. Each caller gets its own copy of the definition.
    """
    if key is not None:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
        if hit is not None:
            return _copy(hit)
    with reading(factory) as session:
        loaded = load_behavior(session, name, version)
    if key is not None and loaded is not None and loaded.definition is not None:
        with _cache_lock:
            _cache[key] = loaded
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        return _copy(loaded)
    return loaded


def _copy(behavior: LoadedBehavior) -> LoadedBehavior:
    return dataclasses.replace(
        behavior,
        definition=copy.deepcopy(behavior.definition),
        inputs=copy.deepcopy(behavior.inputs),
    )


def validate_payload(behavior: LoadedBehavior, payload: Any) -> tuple[dict[str, Any], list[str]]:
    """Check `payload` against the behavior's inputs; returns (inputs with defaults, problems)."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return {}, ["payload: expected an object"]
    if nesting_depth(payload) > MAX_NESTING:
        return {}, [f"payload: lists and objects are nested more than {MAX_NESTING} deep"]
    unstorable: list[str] = []
    json_problems(payload, "payload", unstorable)
    if unstorable:
        return {}, unstorable
    try:
        size = len(json.dumps(payload, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        return {}, ["payload: not JSON-serializable"]
    if size > MAX_PAYLOAD_BYTES:
        return {}, [f"payload: {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"]
    schema = behavior.inputs
    if not schema:
        return dict(payload), []
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in payload:
        if key not in schema:
            problems.append(f"payload.{key}: unknown input (expected {', '.join(schema)})")
    for name, spec in schema.items():
        where = f"payload.{name}"
        if name not in payload or payload[name] is None:
            if spec.get("default") is not None:
                values[name] = spec["default"]
            elif spec.get("required"):
                problems.append(f"{where}: required")
            continue
        value = payload[name]
        kind = spec.get("type", "string")
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON's 3.0 is the integer 3 (as JSON Schema's integer says)
        problem = type_problem(value, kind)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        if "enum" in spec and value not in spec["enum"]:
            options = ", ".join(json.dumps(o) for o in spec["enum"])
            problems.append(f"{where}: must be one of {options}")
        limit = spec.get("max_length")
        if limit is not None and isinstance(value, str | list) and len(value) > limit:
            problems.append(f"{where}: longer than {limit}")
        values[name] = value
    return values, problems


_TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "array": {"type": "array"},
    "date": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
    "datetime": {
        "type": "string",
        "pattern": DATETIME_PATTERN,
        "description": "ISO 8601, e.g. 2024-05-31T09:30:00Z (the date and time must exist)",
    },
}
PAYLOAD_LIMITS = (
    f"At most {MAX_PAYLOAD_BYTES} bytes as compact JSON and {MAX_NESTING} levels of lists and "
    "objects; no string may hold NUL or an unpaired surrogate."
)


def payload_json_schema(behavior: LoadedBehavior) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a payload `validate_payload` accepts for `behavior`.

    Stated: unknown inputs (when inputs are declared), required inputs without a default,
    each input's type, enum and max_length; null or a missing input means its default. Left
    to the server (and said in the description): the size, nesting and text limits, and that
    a date or date-time names a real day and time.
    """
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Payload of {behavior.name}",
        "description": "Checked against the behavior's inputs when a run is triggered; 422 lists "
        "every input that does not fit (`payload.<input>: ...`). " + PAYLOAD_LIMITS,
        "type": "object",
    }
    if not behavior.inputs:
        return schema  # without inputs any object is accepted
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in behavior.inputs.items():
        kind = spec.get("type", "string")
        prop = dict(_TYPE_SCHEMAS.get(kind, {}))
        if spec.get("description"):
            prop["description"] = spec["description"]
        if "enum" in spec:
            prop["enum"] = list(spec["enum"])
        limit = spec.get("max_length")
        if limit is not None:
            prop["maxItems" if kind == "array" else "maxLength"] = limit
        if spec.get("default") is not None:
            prop["default"] = spec["default"]
        elif spec.get("required"):
            required.append(name)
            properties[name] = prop
            continue
        if "type" in prop:  # null (like leaving it out) means the default, or nothing
            prop["type"] = [prop["type"], "null"]
        if "enum" in prop:
            prop["enum"].append(None)
        properties[name] = prop
    schema["properties"] = properties
    schema["additionalProperties"] = False
    if required:
        schema["required"] = required
    return schema
