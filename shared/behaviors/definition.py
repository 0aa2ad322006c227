"""Parse and validate behavior definitions (YAML or JSON), listing every problem with its path.

Problems read `path: message`, e.g. `steps[2].soql: required` or `steps[1].id: duplicate
"case"`. Validation here needs no database; `store.save_behavior` adds the account check.

The shape of a definition is the pydantic model `Definition` (one model per action, chosen by
`action`); `definition_json_schema()` is its JSON Schema, served at
/api/v1/schemas/behavior.json for editors. On top of the model, `validate_definition` checks
what a schema cannot: unique step ids, nesting and step limits, template syntax, names and
the sandbox, and values a JSON column cannot store.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jinja2
import jinja2.nodes
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from .templates import check_template, has_template

MAX_SOURCE_CHARS = 256 * 1024
MAX_STEPS = 100  # every step counts, nested ones too
MAX_DEPTH = 3  # foreach inside foreach inside foreach
MAX_INPUTS = 50
# Lists/objects inside each other; deeper values make YAML dumping and the recursive checks
# here run out of stack (a RecursionError, not a problem report).
MAX_NESTING = 32
# (key, minimum, maximum): max_attempts lands in an integer column of every run.
LIMITS = (("max_attempts", 1, 1000), ("timeout_seconds", 1, 7 * 24 * 3600))

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
STEP_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
INPUT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array", "date", "datetime")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")

TOP_LEVEL_KEYS = {
    "name",
    "description",
    "account",
    "inputs",
    "steps",
    "result",
    "max_attempts",
    "timeout_seconds",
}
COMMON_STEP_KEYS = {"id", "action", "when", "description"}


@dataclass(frozen=True)
class ActionSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    uses_account: bool = True


COMPOSITE_OPERATIONS = ("create", "update", "delete")
COMPOSITE_MAX = 200  # records (or ids) per sObject Collections call, as Salesforce allows

ACTIONS: dict[str, ActionSpec] = {
    "http.request": ActionSpec(
        ("url",),
        ("method", "headers", "params", "json", "body", "form", "timeout", "follow_redirects"),
    ),
    "salesforce.query": ActionSpec(("soql",), ("limit", "include_deleted")),
    "salesforce.get": ActionSpec(
        ("sobject",), ("record_id", "external_id_field", "external_id", "fields")
    ),
    "salesforce.create": ActionSpec(("sobject", "fields")),
    "salesforce.update": ActionSpec(("sobject", "record_id", "fields")),
    "salesforce.upsert": ActionSpec(("sobject", "external_id_field", "external_id", "fields")),
    "salesforce.delete": ActionSpec(("sobject", "record_id")),
    "salesforce.composite": ActionSpec(
        ("operation",), ("sobject", "records", "ids", "all_or_none")
    ),
    "set": ActionSpec(("vars",), uses_account=False),
    "foreach": ActionSpec(("items", "steps"), ("max_iterations",), uses_account=False),
    "fail": ActionSpec(("message",), ("code",), uses_account=False),
}


class ParseError(ValueError):
    """The source is not valid YAML/JSON; the message names the line."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases: a "billion laughs" document cannot expand."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


# Characters no database text or JSON column stores: NUL (PostgreSQL refuses it) and unpaired
# surrogates (not encodable as UTF-8; JSON's "\ud800" escape lets them into a str).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why the text cannot be stored, or None."""
    match = _UNSTORABLE.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL characters"
    return "must not contain unpaired surrogate characters"


def json_problems(value: Any, path: str, problems: list[str], *, limit: int = 20) -> None:
    """Report values that do not survive a trip through a JSON column unchanged.

    YAML makes dates, bytes and sets, and both YAML and Python's json read NaN/Infinity;
    databases refuse those (or NUL and unpaired surrogates in strings) with an error at
    commit time, so they are caught here with their path instead.
    """
    if len(problems) >= limit:
        return
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            problems.append(f"{path}: must be a finite number (NaN and infinity are not JSON)")
    elif isinstance(value, str):
        problem = text_problem(value)
        if problem:
            problems.append(f"{path}: {problem}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            json_problems(item, f"{path}[{index}]", problems, limit=limit)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{path or 'definition'}: key {key!r} must be a string (quote it)")
                continue
            problem = text_problem(key)
            if problem:
                problems.append(f"{path or 'definition'}: keys {problem}")
                continue
            json_problems(item, f"{path}.{key}" if path else key, problems, limit=limit)
    else:
        hint = " (quote dates and times)" if type(value).__name__ in ("date", "datetime") else ""
        problems.append(f"{path}: a {_type_name(value)} is not a JSON value{hint}")


def nesting_depth(value: Any) -> int:
    """How many lists/objects deep `value` goes (iteratively: it must not recurse)."""
    deepest = 0
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:
                children = item.values() if isinstance(item, dict) else item
                pending.extend((child, depth) for child in children)
    return deepest


def detect_format(source: str) -> str:
    return "json" if source.lstrip().startswith(("{", "[")) else "yaml"


def parse_source(source: str, fmt: str | None = None) -> Any:
    """Parse YAML or JSON text; raise ParseError with the line of the first error."""
    if len(source) > MAX_SOURCE_CHARS:
        raise ParseError(f"source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    problem = text_problem(source)
    if problem:
        raise ParseError(f"source {problem}")
    fmt = fmt or detect_format(source)
    parsed = _parse(source, fmt)
    if nesting_depth(parsed) > MAX_NESTING:
        raise ParseError(f"lists and objects are nested more than {MAX_NESTING} deep")
    return parsed


def _parse(source: str, fmt: str) -> Any:
    if fmt == "json":
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON on line {exc.lineno}: {exc.msg}") from None
        except RecursionError:
            raise ParseError(f"lists and objects are nested more than {MAX_NESTING} deep") from None
    if fmt != "yaml":
        raise ParseError(f'unknown format "{fmt}" (expected "yaml" or "json")')
    try:
        return yaml.load(source, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ParseError(f"lists and objects are nested more than {MAX_NESTING} deep") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ParseError(f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ParseError(f"invalid YAML: {exc}") from None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _templates_in(value: Any, path: str, problems: list[str]) -> None:
    """Check every template string inside `value` (recursively)."""
    if isinstance(value, str):
        if has_template(value):
            problem = check_template(value)
            if problem:
                problems.append(f"{path}: {problem}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _templates_in(item, f"{path}[{index}]", problems)
    elif isinstance(value, dict):
        for key, item in value.items():
            _templates_in(item, f"{path}.{key}", problems)


def validate_inputs_schema(
    inputs: Any, problems: list[str], path: str = "inputs", *, shape: bool = True
) -> None:
    """Check an inputs schema: `{name: {type, required?, default?, enum?, max_length?}}`.

    `shape=False` skips what the `InputSpec` model checks (when `Definition` already did).
    """
    if inputs is None:
        return
    if shape:
        problems += _model_problems(inputs, _INPUTS, path)
    if not isinstance(inputs, dict):
        return
    if len(inputs) > MAX_INPUTS:
        problems.append(f"{path}: at most {MAX_INPUTS} inputs")
    for name, spec in inputs.items():
        where = f"{path}.{name}"
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        enum = spec.get("enum")
        if isinstance(enum, list) and kind in INPUT_TYPES:
            for index, option in enumerate(enum):
                if type_problem(option, kind):
                    problems.append(f"{where}.enum[{index}]: not a {kind}")
        if "default" in spec and kind in INPUT_TYPES and spec["default"] is not None:
            problem = type_problem(spec["default"], kind)
            if problem:
                problems.append(f"{where}.default: {problem}")


def type_problem(value: Any, kind: str) -> str | None:
    """Return why `value` is not of the input type `kind`, or None."""
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "date": isinstance(value, str) and _iso(value, dt.date),
        "datetime": isinstance(value, str) and _iso(value, dt.datetime),
    }.get(kind, True)
    if ok:
        return None
    if kind in ("date", "datetime") and isinstance(value, str):
        example = "2024-05-31" if kind == "date" else "2024-05-31T09:30:00Z"
        return f"expected an ISO 8601 {kind} such as {example}"
    return f"expected {kind}, got {_type_name(value)}"


DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# ISO 8601's extended form, as a payload's JSON Schema states it: a date, T (or a space),
# hours and minutes, optional seconds and fraction, optional Z or +hh:mm offset.
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)


def _iso(value: str, kind: type[dt.date]) -> bool:
    """Whether `value` is a real date (DATE_PATTERN) or date-time (DATETIME_PATTERN)."""
    pattern = DATETIME_PATTERN if kind is dt.datetime else DATE_PATTERN
    if re.fullmatch(pattern, value) is None:
        return False
    try:
        parse = dt.datetime.fromisoformat if kind is dt.datetime else dt.date.fromisoformat
        return bool(parse(value))
    except ValueError:
        return False


class _StepWalker:
    """What the models cannot say about steps: unique ids, limits, templates."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.ids: dict[str, str] = {}
        self.count = 0
        self.reported_too_many = False

    def steps(self, steps: Any, path: str, depth: int) -> None:
        if not isinstance(steps, list):
            return
        if depth > MAX_DEPTH:
            self.problems.append(f"{path}: foreach is nested too deep (at most {MAX_DEPTH})")
            return
        for index, step in enumerate(steps):
            self.step(step, f"{path}[{index}]", depth)

    def step(self, step: Any, path: str, depth: int) -> None:
        self.count += 1
        if self.count > MAX_STEPS and not self.reported_too_many:
            self.reported_too_many = True
            self.problems.append(f"steps: at most {MAX_STEPS} steps (nested ones count)")
        if not isinstance(step, dict):
            return
        step_id = step.get("id")
        if isinstance(step_id, str) and STEP_ID_RE.match(step_id):
            if step_id in self.ids:
                self.problems.append(f'{path}.id: duplicate "{step_id}" (also {self.ids[step_id]})')
            else:
                self.ids[step_id] = path
        action = step.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            return
        when = step.get("when")
        if isinstance(when, str) and when.strip():
            if has_template(when):
                problem = check_template(when)
            else:
                problem = check_template(when, expression=True)
            if problem:
                self.problems.append(f"{path}.when: {problem}")
        if action == "http.request":
            method = step.get("method")
            if isinstance(method, str) and not has_template(method):
                if method.upper() not in HTTP_METHODS:
                    self.problems.append(f"{path}.method: must be one of {', '.join(HTTP_METHODS)}")
            if sum(key in step for key in ("json", "body", "form")) > 1:
                self.problems.append(f"{path}: give one of json, body or form")
            timeout = step.get("timeout")
            if (
                timeout is not None
                and not (isinstance(timeout, str) and has_template(timeout))
                and (
                    isinstance(timeout, bool)
                    or not isinstance(timeout, int | float)
                    or not 0 < timeout <= 120
                )
            ):
                self.problems.append(f"{path}.timeout: must be a number of seconds from 0 to 120")
        elif action == "salesforce.get":
            self.get_form(step, path)
        elif action == "salesforce.composite":
            self.composite(step, path)
        if action != "http.request" and (
            isinstance(step.get("account"), str) and step["account"].strip().lower() == "none"
        ):
            self.problems.append(f"{path}.account: none is only for http.request")
        for key, value in step.items():
            if key not in ("steps", "when", "id", "action"):
                _templates_in(value, f"{path}.{key}", self.problems)
        if action == "foreach" and "steps" in step:
            self.steps(step["steps"], f"{path}.steps", depth + 1)

    def get_form(self, step: dict[str, Any], path: str) -> None:
        by_id = step.get("record_id") is not None
        by_external = [step.get(k) is not None for k in ("external_id_field", "external_id")]
        if by_id == any(by_external):
            self.problems.append(
                f"{path}: give either record_id or external_id_field and external_id"
            )
        elif any(by_external) and not all(by_external):
            missing = "external_id" if by_external[0] else "external_id_field"
            self.problems.append(f"{path}.{missing}: required with the other external_id key")

    def composite(self, step: dict[str, Any], path: str) -> None:
        operation = step.get("operation")
        if operation not in COMPOSITE_OPERATIONS:
            return  # a template (checked when it runs) or a wrong value (the model says so)
        wanted, other = ("ids", "records") if operation == "delete" else ("records", "ids")
        if step.get(wanted) is None:
            self.problems.append(f"{path}.{wanted}: required for operation {operation}")
        if step.get(other) is not None:
            self.problems.append(f"{path}.{other}: not used by operation {operation}")
        records = step.get("records")
        if operation == "delete" or not isinstance(records, list):
            return
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                continue
            if operation == "update" and not any(str(k).lower() == "id" for k in record):
                self.problems.append(f"{path}.records[{index}]: an update needs the record's Id")
            attributes = record.get("attributes")
            if step.get("sobject") is None and not (
                isinstance(attributes, dict) and attributes.get("type")
            ):
                self.problems.append(
                    f"{path}.records[{index}]: no attributes.type and the step has no sobject"
                )


def validate_definition(definition: Any) -> list[str]:
    """Return every problem of a parsed definition (empty when valid)."""
    if not isinstance(definition, dict):
        return ["definition: expected an object with name and steps"]
    problems = _model_problems(definition)
    validate_inputs_schema(definition.get("inputs"), problems, shape=False)
    _StepWalker(problems).steps(definition.get("steps"), "steps", 1)
    if "result" in definition:
        _templates_in(definition["result"], "result", problems)
    problems += reference_problems(definition)
    json_problems(definition, "", problems)
    return problems


def account_names(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """Every literal account name the definition names, with its path."""
    found: list[tuple[str, str]] = []
    if isinstance(definition.get("account"), str):
        found.append(("account", definition["account"]))

    def walk(steps: Any, path: str) -> None:
        if not isinstance(steps, list):
            return
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            where = f"{path}[{index}]"
            account = step.get("account")
            if isinstance(account, str) and account.strip().lower() == "none":
                pass  # http.request without an account (checked by the step walker)
            elif isinstance(account, str) and not has_template(account):
                found.append((f"{where}.account", account))
            if step.get("action") == "foreach":
                walk(step.get("steps"), f"{where}.steps")

    walk(definition.get("steps"), "steps")
    return found


# --------------------------------------------------------------------------- the models


def _integral(value: Any) -> Any:
    # YAML and JSON read `3.0` as a float; it is the integer 3. `2.5` stays a float (refused).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Template = Annotated[str, Field(pattern=r"\{\{|\{%", description="a {{ template }}")]
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_integral)]
StepId = Annotated[str, Field(pattern=STEP_ID_RE.pattern)]
InputName = Annotated[str, Field(pattern=INPUT_NAME_RE.pattern)]


class InputSpec(_Model):
    type: Literal[INPUT_TYPES] = Field(  # type: ignore[valid-type]
        description="date and datetime take ISO 8601 text (2024-05-31, 2024-05-31T09:30:00Z)"
    )
    required: bool = False
    default: Any = None
    enum: Annotated[list[Any], Field(min_length=1)] | None = None
    max_length: Annotated[int, Field(ge=0), BeforeValidator(_integral)] | None = None
    description: str | None = None


class _Step(_Model):
    id: StepId
    when: Any = Field(None, description="run the step only when this is true")
    description: str | None = None


class _AccountStep(_Step):
    account: str | None = Field(
        None, description="an account name (or a template); none (http.request only): no account"
    )


class HttpRequest(_AccountStep):
    action: Literal["http.request"]
    url: str
    method: str | None = Field(None, description=", ".join(HTTP_METHODS))
    headers: dict[str, Any] | str | None = None
    params: dict[str, Any] | str | None = None
    json_: Any = Field(None, alias="json")
    body: Any = None
    form: dict[str, Any] | str | None = None
    timeout: Any = Field(None, description="seconds, more than 0 and at most 120")
    follow_redirects: bool | str | None = None


class Query(_AccountStep):
    action: Literal["salesforce.query"]
    soql: str = Field(description="SELECT ...; interpolate values with | soql or | soql_like")
    limit: PositiveInt | Template | None = None
    include_deleted: bool | Template | None = None


class Get(_AccountStep):
    """By Id (`record_id`) or by external id (`external_id_field` and `external_id`)."""

    action: Literal["salesforce.get"]
    sobject: str
    record_id: str | None = Field(None, description="give this or external_id_field/external_id")
    external_id_field: str | None = Field(None, description="an External ID field, e.g. Ext_Id__c")
    external_id: Any = Field(None, description="the value to look up (URL-encoded when sent)")
    fields: list[str] | str | None = None


class Create(_AccountStep):
    action: Literal["salesforce.create"]
    sobject: str
    fields: dict[str, Any] | str


class Update(_AccountStep):
    action: Literal["salesforce.update"]
    sobject: str
    record_id: str
    fields: dict[str, Any] | str


class Upsert(_AccountStep):
    action: Literal["salesforce.upsert"]
    sobject: str
    external_id_field: str
    external_id: Any
    fields: dict[str, Any] | str


class Delete(_AccountStep):
    action: Literal["salesforce.delete"]
    sobject: str
    record_id: str


class Composite(_AccountStep):
    """sObject Collections: one call creates, updates or deletes up to 200 records."""

    action: Literal["salesforce.composite"]
    operation: Literal[COMPOSITE_OPERATIONS] | Template = Field(  # type: ignore[valid-type]
        description="create (POST), update (PATCH, each record has Id) or delete (ids)"
    )
    sobject: str | None = Field(
        None, description="the type of records that give no attributes.type"
    )
    records: Annotated[list[dict[str, Any] | str], Field(max_length=COMPOSITE_MAX)] | str | None = (
        Field(None, description="create/update: field maps, at most 200")
    )
    ids: Annotated[list[str], Field(max_length=COMPOSITE_MAX)] | str | None = Field(
        None, description="delete: record Ids, at most 200"
    )
    all_or_none: bool | Template | None = Field(
        None, description="true: one failing record rolls back every record of the call"
    )


class SetVars(_Step):
    action: Literal["set"]
    vars: dict[InputName, Any]


class Fail(_Step):
    action: Literal["fail"]
    message: Any
    code: Any = None


class Foreach(_Step):
    action: Literal["foreach"]
    items: Any
    steps: list[Step]
    max_iterations: PositiveInt | Template | None = None


Step = Annotated[
    HttpRequest
    | Query
    | Get
    | Create
    | Update
    | Upsert
    | Delete
    | Composite
    | SetVars
    | Fail
    | Foreach,
    Field(discriminator="action"),
]
Foreach.model_rebuild()


class Definition(_Model):
    """A behavior definition (SPEC: Behavior definitions)."""

    model_config = ConfigDict(title="Forcebot behavior definition")

    name: Annotated[str, Field(pattern=NAME_RE.pattern)]
    description: str | None = None
    account: str | None = Field(None, description="the account its Salesforce steps use")
    inputs: dict[InputName, InputSpec] | None = None
    steps: Annotated[list[Step], Field(min_length=1)]
    result: Any = None
    max_attempts: Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integral)] | None = None
    timeout_seconds: (
        Annotated[int, Field(ge=1, le=7 * 24 * 3600), BeforeValidator(_integral)] | None
    ) = None


class Package(_Model):
    """A package file: several behaviors imported together."""

    model_config = ConfigDict(extra="allow", title="Forcebot behavior package")

    behaviors: list[Definition]


def definition_json_schema() -> dict[str, Any]:
    """The JSON Schema of a behavior definition or a package of them (draft 2020-12)."""
    definition = Definition.model_json_schema(by_alias=True)
    defs = definition.pop("$defs", {})
    package = Package.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs.update(package.pop("$defs", {}))
    defs["Definition"] = definition
    defs["Package"] = package
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/v1/schemas/behavior.json",
        "title": "Forcebot behavior definition or package",
        "anyOf": [{"$ref": "#/$defs/Definition"}, {"$ref": "#/$defs/Package"}],
        "$defs": defs,
    }


_ACTION_LIST = ", ".join(ACTIONS)


_INPUTS = TypeAdapter(dict[InputName, InputSpec])


def _model_problems(definition: Any, adapter: Any = None, prefix: str = "") -> list[str]:
    """What `Definition` (or `adapter`) finds, as `path: message` lines."""
    try:
        if adapter is None:
            Definition.model_validate(definition)
        else:
            adapter.validate_python(definition, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:
        return []
    problems: list[str] = []
    seen: set[str] = set()
    for error in errors:
        parts: list[str] = [prefix] if prefix else []
        for part in error["loc"]:
            if isinstance(part, int):
                parts.append(f"[{part}]")
            elif part in ACTIONS or _is_union_member(part):
                continue  # the union member pydantic tried, not a key
            else:
                parts.append(("." if parts else "") + str(part))
        path = "".join(parts)
        kind = error["type"]
        ctx = error.get("ctx") or {}
        value = error.get("input")
        if kind == "missing" or (value is None and kind.endswith("_type")):
            message = "required"
        elif kind == "extra_forbidden":
            action = _action_at(definition, error["loc"][:-1])
            message = f"unknown key for {action}" if action else "unknown key"
        elif kind == "union_tag_not_found":
            path, message = f"{path}.action", "required"
        elif kind == "union_tag_invalid":
            path = f"{path}.action"
            message = f'unknown action "{ctx.get("tag")}" (expected one of {_ACTION_LIST})'
        elif kind == "model_type" or kind == "model_attributes_type":
            message = "expected an object" + (" with id and action" if "steps" in path else "")
        elif kind == "literal_error" and path.endswith(".type"):
            message = f"must be one of {', '.join(INPUT_TYPES)}"
        elif kind == "string_pattern_mismatch" and error["loc"][-1] == "[key]":
            message = "names are letters, digits and _ (starting with a letter or _)"
        elif kind == "string_pattern_mismatch":
            message = _PATTERN_HINTS.get(str(error["loc"][-1]), "not a valid value")
        elif kind in ("int_type", "int_from_float", "int_parsing"):
            message = "must be a whole number"
        elif kind == "greater_than_equal":
            message = f"must be at least {ctx.get('ge')}"
        elif kind == "less_than_equal":
            message = f"must be at most {ctx.get('le')}"
        elif kind == "too_short" and path == "steps":
            message = "at least one step is required"
        else:
            message = str(error["msg"])
        if path not in seen:  # a union reports each member's error; the first says enough
            seen.add(path)
            problems.append(f"{path}: {message}")
    return problems


def _is_union_member(part: str) -> bool:
    return part.startswith(_MEMBER_PREFIXES) or part in ("str", "int", "bool", "float", "none")


_MEMBER_PREFIXES = ("[", "constrained-", "function-", "literal[", "list[", "dict[", "nullable[")


_PATTERN_HINTS = {
    "name": "use lowercase letters, digits and - (at most 100 characters)",
    "id": "must start with a letter or _ and hold only letters, digits and _",
}


def _action_at(definition: Any, loc: tuple[Any, ...]) -> str | None:
    node = definition
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
    action = node.get("action") if isinstance(node, dict) else None
    return action if isinstance(action, str) and action in ACTIONS else None


# --------------------------------------------------------------------------- references


_SOQL_FILTERS = frozenset({"soql", "soql_like"})
_PARSER = jinja2.Environment()  # parsing only: the sandbox matters when rendering


def _parse_template(text: str, *, expression: bool) -> jinja2.nodes.Template | None:
    try:
        return _PARSER.parse("{{ " + text + " }}" if expression else text)
    except jinja2.TemplateSyntaxError:
        return None  # reported by check_template


def _names_under(tree: jinja2.nodes.Node, root: str) -> list[str]:
    """Every `root.X` / `root['X']` the template reads."""
    found: list[str] = []
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, jinja2.nodes.Name) and target.name == root):
            continue
        if isinstance(node, jinja2.nodes.Getattr):
            found.append(node.attr)
        elif isinstance(node, jinja2.nodes.Getitem):
            arg = node.arg
            if isinstance(arg, jinja2.nodes.Const) and isinstance(arg.value, str):
                found.append(arg.value)
    return found


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string inside `value` with its path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [x for i, item in enumerate(value) for x in _strings(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [x for k, item in value.items() for x in _strings(item, f"{path}.{k}")]
    return []


def reference_problems(definition: dict[str, Any]) -> list[str]:
    """Templates that name an undeclared input or a step that does not run before them, and
    `soql:` text that is not a SELECT.

    Inputs are checked only when the definition declares `inputs:` (without it any payload is
    accepted). A step may use the steps before it, in the order they run (a foreach's own
    steps before the steps after it), and its enclosing foreach steps' earlier steps.
    """
    declared = definition.get("inputs")
    inputs = set(declared) if isinstance(declared, dict) and declared else None
    order: list[tuple[str, dict[str, Any]]] = []

    def walk(steps: Any, path: str) -> None:
        if isinstance(steps, list):
            for index, step in enumerate(steps):
                if isinstance(step, dict):
                    order.append((f"{path}[{index}]", step))
                    if step.get("action") == "foreach":
                        walk(step.get("steps"), f"{path}[{index}].steps")

    walk(definition.get("steps"), "steps")
    position: dict[str, int] = {}
    for index, (_, step) in enumerate(order):
        if isinstance(step.get("id"), str):
            position.setdefault(step["id"], index)
    problems: list[str] = []

    def check(path: str, text: str, before: int, *, expression: bool = False) -> None:
        if not expression and not has_template(text):
            return
        tree = _parse_template(text, expression=expression)
        if tree is None:
            return
        if inputs is not None:
            for name in dict.fromkeys(_names_under(tree, "inputs")):
                if name not in inputs:
                    problems.append(f"{path}: inputs.{name} is not declared in inputs")
        for name in dict.fromkeys(_names_under(tree, "steps")):
            if name not in position:
                problems.append(f"{path}: steps.{name} is not a step of this behavior")
            elif position[name] >= before:
                problems.append(f"{path}: steps.{name} is used before it runs")

    for index, (path, step) in enumerate(order):
        for key, value in step.items():
            if key in ("id", "action", "steps"):
                continue
            for where, text in _strings(value, f"{path}.{key}"):
                is_when = key == "when" and where == f"{path}.when"
                check(where, text, index, expression=is_when and not has_template(text))
        soql = step.get("soql")
        if step.get("action") == "salesforce.query" and isinstance(soql, str):
            head = soql.lstrip()
            if not head.startswith(("{{", "{%")) and not head[:6].upper() == "SELECT":
                problems.append(f"{path}.soql: must be a SELECT query")
    for where, text in _strings(definition.get("result"), "result"):
        check(where, text, len(order))
    return problems


def definition_warnings(definition: Any) -> list[str]:
    """Advice that does not stop a save: a `soql:` that interpolates a value without the
    `soql` or `soql_like` filter (the value could change the query)."""
    if not isinstance(definition, dict):
        return []
    warnings: list[str] = []

    def walk(steps: Any, path: str) -> None:
        if not isinstance(steps, list):
            return
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            where = f"{path}[{index}]"
            soql = step.get("soql")
            if isinstance(soql, str) and has_template(soql):
                tree = _parse_template(soql, expression=False)
                for output in tree.find_all(jinja2.nodes.Output) if tree else []:
                    for node in output.nodes:
                        if isinstance(node, jinja2.nodes.TemplateData):
                            continue
                        if not (isinstance(node, jinja2.nodes.Filter) and node.name in
                                _SOQL_FILTERS):  # fmt: skip
                            warnings.append(
                                f"{where}.soql: a value is interpolated without | soql or "
                                "| soql_like; a payload could change the query"
                            )
                            break
            if step.get("action") == "foreach":
                walk(step.get("steps"), f"{where}.steps")

    walk(definition.get("steps"), "steps")
    return list(dict.fromkeys(warnings))


def problem_lines(source: str, problems: list[str]) -> list[str]:
    """`problems` with ` (line N)` added where the YAML/JSON text places the path."""
    try:
        root = yaml.compose(source, Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except (yaml.YAMLError, RecursionError):
        return problems
    out = []
    for problem in problems:
        path = problem.split(": ", 1)[0]
        line = _line_of(root, path)
        out.append(f"{problem} (line {line})" if line and "(line " not in problem else problem)
    return out


def _line_of(node: Any, path: str) -> int | None:
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    if not parts or node is None:
        return None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == part]
            if not match:
                return None
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and part.startswith("["):
            index = int(part[1:-1])
            if index >= len(node.value):
                return None
            node = node.value[index]
        else:
            return None
    return int(node.start_mark.line) + 1
