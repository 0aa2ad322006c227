"""Parse and validate behavior definitions (YAML or JSON), listing every problem with its path.

Problems read `path: message`, e.g. `steps[2].soql: required` or `steps[1].id: duplicate
"case"`. Validation here needs no database; `store.save_behavior` adds the account check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

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
INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array")
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


ACTIONS: dict[str, ActionSpec] = {
    "http.request": ActionSpec(
        ("url",),
        ("method", "headers", "params", "json", "body", "form", "timeout", "follow_redirects"),
    ),
    "salesforce.query": ActionSpec(("soql",), ("limit", "include_deleted")),
    "salesforce.get": ActionSpec(("sobject", "record_id"), ("fields",)),
    "salesforce.create": ActionSpec(("sobject", "fields")),
    "salesforce.update": ActionSpec(("sobject", "record_id", "fields")),
    "salesforce.upsert": ActionSpec(("sobject", "external_id_field", "external_id", "fields")),
    "salesforce.delete": ActionSpec(("sobject", "record_id")),
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


def validate_inputs_schema(inputs: Any, problems: list[str], path: str = "inputs") -> None:
    """Check an inputs schema: `{name: {type, required?, default?, enum?, max_length?}}`."""
    if inputs is None:
        return
    if not isinstance(inputs, dict):
        problems.append(f"{path}: expected an object of input definitions")
        return
    if len(inputs) > MAX_INPUTS:
        problems.append(f"{path}: at most {MAX_INPUTS} inputs")
    for name, spec in inputs.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not INPUT_NAME_RE.match(name):
            problems.append(f"{where}: input names are letters, digits and _")
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected an object like {{type: string}}")
            continue
        unknown = set(spec) - {"type", "required", "default", "enum", "max_length", "description"}
        for key in sorted(unknown, key=str):
            problems.append(f"{where}.{key}: unknown key")
        kind = spec.get("type")
        if kind is None:
            problems.append(f"{where}.type: required")
        elif kind not in INPUT_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(INPUT_TYPES)}")
        if "required" in spec and not isinstance(spec["required"], bool):
            problems.append(f"{where}.required: must be true or false")
        if "max_length" in spec:
            limit = spec["max_length"]
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                problems.append(f"{where}.max_length: must be a whole number >= 0")
        if "enum" in spec:
            enum = spec["enum"]
            if not isinstance(enum, list) or not enum:
                problems.append(f"{where}.enum: must be a non-empty list")
            elif kind in INPUT_TYPES:
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
    }.get(kind, True)
    return None if ok else f"expected {kind}, got {_type_name(value)}"


class _StepWalker:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.ids: dict[str, str] = {}
        self.count = 0
        self.reported_too_many = False

    def steps(self, steps: Any, path: str, depth: int) -> None:
        if not isinstance(steps, list):
            self.problems.append(f"{path}: expected a list of steps")
            return
        if not steps:
            self.problems.append(f"{path}: at least one step is required")
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
            self.problems.append(f"{path}: expected an object with id and action")
            return
        step_id = step.get("id")
        if step_id is None:
            self.problems.append(f"{path}.id: required")
        elif not isinstance(step_id, str) or not STEP_ID_RE.match(step_id):
            self.problems.append(
                f"{path}.id: must start with a letter or _ and hold only letters, digits and _"
            )
        elif step_id in self.ids:
            self.problems.append(f'{path}.id: duplicate "{step_id}" (also {self.ids[step_id]})')
        else:
            self.ids[step_id] = path
        action = step.get("action")
        if action is None:
            self.problems.append(f"{path}.action: required")
            return
        spec = ACTIONS.get(action) if isinstance(action, str) else None
        if spec is None:
            self.problems.append(
                f'{path}.action: unknown action "{action}" (expected one of {", ".join(ACTIONS)})'
            )
            return
        allowed = COMMON_STEP_KEYS | set(spec.required) | set(spec.optional)
        if spec.uses_account:
            allowed.add("account")
        for key in step:
            if key not in allowed:
                self.problems.append(f"{path}.{key}: unknown key for {action}")
        for key in spec.required:
            if step.get(key) is None:
                self.problems.append(f"{path}.{key}: required")
        if "account" in step and not isinstance(step["account"], str):
            self.problems.append(f"{path}.account: must be an account name")
        when = step.get("when")
        if isinstance(when, str) and when.strip():
            if has_template(when):
                problem = check_template(when)
            else:
                problem = check_template(when, expression=True)
            if problem:
                self.problems.append(f"{path}.when: {problem}")
        self.action_fields(action, step, path)
        for key, value in step.items():
            if key not in ("steps", "when", "id", "action"):
                _templates_in(value, f"{path}.{key}", self.problems)
        if action == "foreach" and "steps" in step:
            self.steps(step["steps"], f"{path}.steps", depth + 1)

    def action_fields(self, action: str, step: dict[str, Any], path: str) -> None:
        def literal(key: str) -> Any:
            value = step.get(key)
            return None if isinstance(value, str) and has_template(value) else value

        if action == "http.request":
            method = literal("method")
            if isinstance(method, str) and method.upper() not in HTTP_METHODS:
                self.problems.append(f"{path}.method: must be one of {', '.join(HTTP_METHODS)}")
            if sum(key in step for key in ("json", "body", "form")) > 1:
                self.problems.append(f"{path}: give one of json, body or form")
            timeout = literal("timeout")
            if (
                "timeout" in step
                and timeout is not None
                and (
                    isinstance(timeout, bool)
                    or not isinstance(timeout, int | float)
                    or not 0 < timeout <= 120
                )
            ):
                self.problems.append(f"{path}.timeout: must be a number of seconds from 0 to 120")
            if "follow_redirects" in step and not isinstance(step["follow_redirects"], bool | str):
                self.problems.append(f"{path}.follow_redirects: must be true or false")
            if "form" in step and not isinstance(step["form"], dict | str):
                self.problems.append(f"{path}.form: expected an object of field values")
        elif isinstance(step.get("account"), str) and step["account"].strip().lower() == "none":
            self.problems.append(f"{path}.account: none is only for http.request")
            for key in ("headers", "params"):
                if key in step and not isinstance(step[key], dict | str):
                    self.problems.append(f"{path}.{key}: expected an object")
        if action in ("salesforce.create", "salesforce.update", "salesforce.upsert"):
            fields = step.get("fields")
            if fields is not None and not isinstance(fields, dict | str):
                self.problems.append(f"{path}.fields: expected an object of field values")
        if action == "salesforce.get":
            fields = step.get("fields")
            if fields is not None and not isinstance(fields, list | str):
                self.problems.append(f"{path}.fields: expected a list of field names")
        for key in ("limit", "max_iterations"):
            value = literal(key)
            if key in step and value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    self.problems.append(f"{path}.{key}: must be a whole number >= 1")
        if action == "set":
            values = step.get("vars")
            if values is not None and not isinstance(values, dict):
                self.problems.append(f"{path}.vars: expected an object of names and values")
            elif isinstance(values, dict):
                for name in values:
                    if not isinstance(name, str) or not INPUT_NAME_RE.match(name):
                        self.problems.append(f"{path}.vars.{name}: names are letters, digits, _")


def validate_definition(definition: Any) -> list[str]:
    """Return every problem of a parsed definition (empty when valid)."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        return ["definition: expected an object with name and steps"]
    for key in definition:
        if key not in TOP_LEVEL_KEYS:
            problems.append(f"{key}: unknown key")
    name = definition.get("name")
    if name is None:
        problems.append("name: required")
    elif not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("name: use lowercase letters, digits and - (at most 100 characters)")
    for key in ("description", "account"):
        if definition.get(key) is not None and not isinstance(definition[key], str):
            problems.append(f"{key}: must be a string")
    for key, minimum, maximum in LIMITS:
        value = definition.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not minimum <= value <= maximum  # also False for NaN
        ):
            problems.append(f"{key}: must be a number from {minimum} to {maximum}")
    validate_inputs_schema(definition.get("inputs"), problems)
    if "steps" not in definition:
        problems.append("steps: required")
    else:
        _StepWalker(problems).steps(definition["steps"], "steps", 1)
    if "result" in definition:
        _templates_in(definition["result"], "result", problems)
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
