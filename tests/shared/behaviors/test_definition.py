"""Definition parsing and validation: every problem is listed with its path."""

from __future__ import annotations

import json

import pytest

from shared.behaviors.definition import MAX_STEPS, ParseError, parse_source, validate_definition

GOOD = """
name: create-case-for-email
description: Open a Case for the contact with this email
account: acme-prod
inputs:
  email: {type: string, required: true}
  subject: {type: string, default: "Support request"}
steps:
  - id: contact
    action: salesforce.query
    soql: "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}"
  - id: case
    action: salesforce.create
    when: "{{ steps.contact.totalSize > 0 }}"
    sobject: Case
    fields: {Subject: "{{ inputs.subject }}", ContactId: "{{ steps.contact.records[0].Id }}"}
  - id: limits
    action: http.request
    method: GET
    url: /services/data/v62.0/limits
result: "{{ steps.case.id }}"
"""


def test_spec_example_is_valid() -> None:
    assert validate_definition(parse_source(GOOD)) == []


def test_json_source_is_valid_too() -> None:
    definition = parse_source(GOOD)
    assert validate_definition(parse_source(json.dumps(definition), "json")) == []


def test_every_problem_is_listed_with_its_path() -> None:
    definition = {
        "name": "Bad Name!",
        "inputs": {"email": {"type": "text"}, "n": {"type": "integer", "default": "x"}},
        "steps": [
            {"id": "case", "action": "salesforce.create", "sobject": "Case", "fields": {}},
            {"id": "case", "action": "salesforce.delete", "sobject": "Case", "record_id": "1"},
            {"id": "q", "action": "salesforce.query"},
            {"id": "x", "action": "salesforce.explode"},
            {"id": "t", "action": "set", "vars": {"a": "line one\n{{ inputs.email }"}},
            {"id": "u", "action": "fail", "message": "m", "bogus": 1},
        ],
    }
    problems = validate_definition(definition)
    assert "name: use lowercase letters, digits and - (at most 100 characters)" in problems
    assert (
        "inputs.email.type: must be one of string, integer, number, boolean, object, array, "
        "date, datetime" in (problems)
    )
    assert "inputs.n.default: expected integer, got string" in problems
    assert 'steps[1].id: duplicate "case" (also steps[0])' in problems
    assert "steps[2].soql: required" in problems
    assert any(
        p.startswith('steps[3].action: unknown action "salesforce.explode"') for p in problems
    )
    assert any(
        p.startswith("steps[4].vars.a: template syntax error on line 2") for p in problems
    ), problems
    assert "steps[5].bogus: unknown key for fail" in problems
    assert len(problems) == 8, problems


def test_missing_steps_and_name() -> None:
    assert validate_definition({}) == ["name: required", "steps: required"]
    assert validate_definition([]) == ["definition: expected an object with name and steps"]


def test_sandbox_escape_is_refused_at_validation() -> None:
    definition = {
        "name": "evil",
        "steps": [
            {"id": "a", "action": "set", "vars": {"x": "{{ ''.__class__.__mro__ }}"}},
            {"id": "b", "action": "set", "vars": {"x": "{{ cycler.__init__.__globals__ }}"}},
            {"id": "c", "action": "fail", "message": "{{ x | attr('__class__') }}"},
            {"id": "d", "action": "fail", "message": "m", "when": "inputs['__class__']"},
        ],
    }
    problems = validate_definition(definition)
    assert len(problems) == 4, problems
    assert all("names starting with '_' are not allowed" in p for p in problems)


def test_nesting_and_step_limits() -> None:
    inner: dict = {"id": "leaf", "action": "fail", "message": "m"}
    for depth in range(4):
        inner = {"id": f"loop{depth}", "action": "foreach", "items": "[]", "steps": [inner]}
    problems = validate_definition({"name": "deep", "steps": [inner]})
    assert any("nested too deep" in p for p in problems), problems

    many = [{"id": f"s{i}", "action": "set", "vars": {"a": 1}} for i in range(MAX_STEPS + 1)]
    assert validate_definition({"name": "many", "steps": many}) == [
        f"steps: at most {MAX_STEPS} steps (nested ones count)"
    ]


def test_nested_ids_are_unique_across_the_behavior() -> None:
    definition = {
        "name": "loops",
        "steps": [
            {"id": "a", "action": "set", "vars": {"x": 1}},
            {
                "id": "loop",
                "action": "foreach",
                "items": "{{ [1, 2] }}",
                "steps": [{"id": "a", "action": "fail", "message": "m"}, {"id": "b"}],
            },
        ],
    }
    problems = validate_definition(definition)
    assert sorted(problems) == [
        'steps[1].steps[0].id: duplicate "a" (also steps[0])',
        "steps[1].steps[1].action: required",
    ]


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(ParseError, match="line 4: mapping values are not allowed"):
        parse_source("name: x\nsteps:\n  - id: a\n    soql: x: y\n")
    with pytest.raises(ParseError, match="line 2"):
        parse_source('{"name": "x",\n "steps": ]}')


def test_yaml_aliases_are_refused() -> None:
    bomb = 'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n'
    with pytest.raises(ParseError, match="aliases"):
        parse_source(bomb)


@pytest.mark.parametrize("key", ["max_attempts", "timeout_seconds"])
def test_integers_must_be_whole_numbers(key: str) -> None:
    definition = parse_source("name: x\nsteps:\n  - {id: a, action: fail, message: m}\n")
    assert validate_definition({**definition, key: 2.5}) == [f"{key}: must be a whole number"]
    assert validate_definition({**definition, key: "3"}) == [f"{key}: must be a whole number"]
    assert validate_definition({**definition, key: True}) == [f"{key}: must be a whole number"]
    assert validate_definition({**definition, key: 3.0}) == []  # YAML's 3.0 is the integer 3
    assert validate_definition({**definition, key: 0}) == [f"{key}: must be at least 1"]


def test_step_integers_take_whole_numbers_or_templates() -> None:
    step = {"id": "q", "action": "salesforce.query", "soql": "SELECT Id FROM Case"}
    for value, ok in ((5, True), ("{{ inputs.n }}", True), (2.5, False), ("five", False)):
        problems = validate_definition({"name": "x", "steps": [{**step, "limit": value}]})
        assert (problems == []) is ok, (value, problems)
        if not ok:
            assert all(p.startswith("steps[0].limit:") for p in problems), problems


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("date", "2024-05-31", ["2024-5-31", "2024-02-30", "31/05/2024", "2024-05-31T10:00:00"]),
        ("datetime", "2024-05-31T09:30:00Z", ["2024-05-31", "2024-05-31T25:00", "yesterday"]),
    ],
)
def test_date_and_datetime_inputs_take_iso_8601_text(kind: str, good: str, bad: list) -> None:
    from shared.behaviors.definition import type_problem

    assert type_problem(good, kind) is None
    for value in bad:
        assert f"ISO 8601 {kind}" in (type_problem(value, kind) or ""), value
    assert type_problem(20240531, kind) == f"expected {kind}, got number"
    definition = {"name": "x", "inputs": {"since": {"type": kind, "default": bad[0]}},
                  "steps": [{"id": "a", "action": "fail", "message": "m"}]}  # fmt: skip
    assert [p.split(":")[0] for p in validate_definition(definition)] == ["inputs.since.default"]
    definition["inputs"]["since"]["default"] = good
    assert validate_definition(definition) == []


def test_shipped_package_fits_the_json_schema() -> None:
    from pathlib import Path

    import jsonschema

    from shared.behaviors.definition import definition_json_schema

    root = Path(__file__).resolve().parents[3]
    package = parse_source((root / "packages" / "salesforce-bot.yaml").read_text())
    schema = definition_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(package)
    for behavior in package["behaviors"]:
        jsonschema.Draft202012Validator(schema).validate(behavior)
        assert validate_definition(behavior) == [], behavior["name"]
    bad = {**package["behaviors"][0], "max_attempts": 2.5}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_references_follow_the_run_order_through_foreach() -> None:
    definition = {
        "name": "loops",
        "inputs": {"ids": {"type": "array"}},
        "steps": [
            {"id": "first", "action": "set", "vars": {"n": "{{ inputs.ids | length }}"}},
            {
                "id": "loop",
                "action": "foreach",
                "items": "{{ inputs['ids'] }}",
                "steps": [
                    {"id": "inner", "action": "set", "vars": {"x": "{{ steps.first.n }}"}},
                    {"id": "again", "action": "set", "vars": {"y": "{{ steps['inner'].x }}"}},
                ],
            },  # fmt: skip
            {"id": "after", "action": "set", "vars": {"z": "{{ steps.again.y }}"}},
        ],
        "result": "{{ steps.after }}",
    }
    assert validate_definition(definition) == []
    definition["steps"][1]["steps"][0]["vars"]["x"] = "{{ steps.after.z }} {{ inputs.idz }}"
    assert sorted(validate_definition(definition)) == [
        "steps[1].steps[0].vars.x: inputs.idz is not declared in inputs",
        "steps[1].steps[0].vars.x: steps.after is used before it runs",
    ]


def test_inputs_are_unchecked_without_an_inputs_block() -> None:
    # Without `inputs:` any payload is accepted, so any inputs.X may exist.
    step = {"id": "a", "action": "set", "vars": {"x": "{{ inputs.anything }}"}}
    assert validate_definition({"name": "free", "steps": [step]}) == []


@pytest.mark.parametrize(
    ("soql", "ok"),
    [("SELECT Id FROM Case", True), ("  select Id FROM Case", True),
     ("{{ inputs.q }}", True), ("DELETE FROM Case", False), ("UPDATE Case", False)],
)  # fmt: skip
def test_soql_must_be_a_select(soql: str, ok: bool) -> None:
    step = {"id": "q", "action": "salesforce.query", "soql": soql}
    problems = validate_definition({"name": "q", "steps": [step]})
    assert problems == ([] if ok else ["steps[0].soql: must be a SELECT query"])


def test_soql_warnings_name_each_unfiltered_interpolation() -> None:
    from shared.behaviors.definition import definition_warnings

    def warn(soql: str) -> list[str]:
        step = {"id": "q", "action": "salesforce.query", "soql": soql}
        return definition_warnings({"name": "q", "steps": [step]})

    assert warn("SELECT Id FROM A WHERE B = {{ inputs.b | soql }}") == []
    assert warn("SELECT Id FROM A WHERE B LIKE {{ inputs.b | soql_like }}") == []
    assert warn("SELECT Id FROM A") == []
    assert len(warn("SELECT Id FROM A WHERE B = {{ inputs.b }}")) == 1
    assert len(warn("SELECT Id FROM A WHERE B = {{ inputs.b | upper }}")) == 1
    assert len(warn("SELECT Id FROM A WHERE B = {{ inputs.b | soql | upper }}")) == 1


def test_problem_lines_point_into_the_yaml() -> None:
    from shared.behaviors.definition import problem_lines

    source = "name: x\nsteps:\n  - id: a\n    action: set\n    vars: {v: 1}\nmax_attempts: 2.5\n"
    assert problem_lines(
        source, ["max_attempts: must be a whole number", "steps[0].vars: x", "nowhere: y"]
    ) == [  # fmt: skip
        "max_attempts: must be a whole number (line 6)",
        "steps[0].vars: x (line 5)",
        "nowhere: y",
    ]
