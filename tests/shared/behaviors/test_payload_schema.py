"""A behavior's payload JSON Schema says what `validate_payload` accepts, case by case.

Every case is judged twice, by jsonschema (with format checking) against
`payload_json_schema` and by `validate_payload`, and the verdicts must agree. What the schema
leaves to the server (its description says so) is not among the cases: the 64 KiB and
nesting limits, NUL in strings, and a date-time on a day that does not exist.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared.behaviors.store import LoadedBehavior, payload_json_schema, validate_payload

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = {
    "string": "text",
    "integer": 3,
    "number": 2.5,
    "boolean": True,
    "object": {"a": 1},
    "array": [1, 2],
    "date": "2024-05-31",
    "datetime": "2024-05-31T09:30:00Z",
}
WRONG = {
    "string": 5,
    "integer": 2.5,
    "number": "1",
    "boolean": 1,
    "object": [1],
    "array": {"a": 1},
    "date": "2024-02-30",
    "datetime": "2024-05-31",
}


def loaded(name: str, inputs: dict[str, Any]) -> LoadedBehavior:
    return LoadedBehavior(name, 1, {}, None, inputs, None, None, None, None)


def verdicts(behavior: LoadedBehavior, payload: Any) -> tuple[bool, bool, list[str]]:
    schema = payload_json_schema(behavior)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    _, problems = validate_payload(behavior, payload)
    return validator.is_valid(payload), not problems, problems


KITCHEN = {
    "email": {"type": "string", "required": True, "max_length": 20},
    "count": {"type": "integer", "default": 1},
    "ratio": {"type": "number"},
    "flag": {"type": "boolean", "required": True, "default": False},
    "kind": {"type": "string", "enum": ["a", "b"]},
    "tags": {"type": "array", "max_length": 2},
    "extra": {"type": "object"},
    "day": {"type": "date"},
    "at": {"type": "datetime"},
}
CASES: list[tuple[dict[str, Any], bool]] = [
    ({"email": "a@b.c"}, True),
    ({"email": "a@b.c", "count": 3.0, "ratio": 1, "flag": None, "kind": None}, True),
    ({"email": "a@b.c", "tags": [1, "x"], "extra": {}, "day": "2024-02-29"}, True),
    ({"email": "a@b.c", "at": "2024-05-31 09:30"}, True),
    ({"email": "a@b.c", "at": "2024-05-31T09:30:00.123456+02:00"}, True),
    ({}, False),
    ({"email": None}, False),
    ({"email": "x" * 21}, False),
    ({"email": "a@b.c", "unknown": 1}, False),
    ({"email": "a@b.c", "count": 2.5}, False),
    ({"email": "a@b.c", "count": True}, False),
    ({"email": "a@b.c", "count": "3"}, False),
    ({"email": "a@b.c", "ratio": False}, False),
    ({"email": "a@b.c", "flag": 0}, False),
    ({"email": "a@b.c", "kind": "c"}, False),
    ({"email": "a@b.c", "tags": [1, 2, 3]}, False),
    ({"email": "a@b.c", "extra": []}, False),
    ({"email": "a@b.c", "day": "2024-02-30"}, False),
    ({"email": "a@b.c", "day": "20240531"}, False),
    ({"email": "a@b.c", "at": "2024-05-31"}, False),
    ({"email": "a@b.c", "at": "2024-05-31T09"}, False),
    ({"email": "a@b.c", "at": "20240531T093000"}, False),
]


@pytest.mark.parametrize(("payload", "accepted"), CASES)
def test_schema_and_server_agree_on_each_case(payload: dict[str, Any], accepted: bool) -> None:
    by_schema, by_server, problems = verdicts(loaded("kitchen", KITCHEN), payload)
    assert by_server is accepted, problems
    assert by_schema is accepted


def test_without_inputs_any_object_is_a_payload() -> None:
    schema = payload_json_schema(loaded("free", {}))
    assert schema["type"] == "object" and "properties" not in schema
    for payload in ({}, {"anything": [1, {"x": None}]}):
        assert verdicts(loaded("free", {}), payload)[:2] == (True, True)


def _package_cases(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """A payload that fits, then one mutation per input: left out, null, wrong type, too long
    or not an option; and an unknown input."""
    valid: dict[str, Any] = {}
    for name, spec in inputs.items():
        value = spec["enum"][0] if "enum" in spec else SAMPLES[spec.get("type", "string")]
        valid[name] = value
    cases = [valid, {**valid, "not_an_input": 1}]
    for name, spec in inputs.items():
        kind = spec.get("type", "string")
        left_out = {k: v for k, v in valid.items() if k != name}
        cases += [left_out, {**valid, name: None}, {**valid, name: WRONG[kind]}]
        if spec.get("max_length") is not None and kind == "string":
            cases.append({**valid, name: "x" * (spec["max_length"] + 1)})
            cases.append({**valid, name: "x" * spec["max_length"]})
        if "enum" in spec:
            cases.append({**valid, name: "not one of them"})
    return cases


def test_the_shipped_package_behaviors_payload_schemas_match_the_server() -> None:
    package = yaml.safe_load((ROOT / "packages" / "salesforce-bot.yaml").read_text())
    checked = 0
    for definition in package["behaviors"]:
        inputs = definition.get("inputs") or {}
        behavior = loaded(definition["name"], copy.deepcopy(inputs))
        jsonschema.Draft202012Validator.check_schema(payload_json_schema(behavior))
        for payload in _package_cases(inputs):
            by_schema, by_server, problems = verdicts(behavior, payload)
            assert by_schema is by_server, (definition["name"], payload, problems)
            checked += 1
        if inputs:
            assert verdicts(behavior, _package_cases(inputs)[0])[:2] == (True, True)
    assert checked > 40
