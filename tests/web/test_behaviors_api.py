"""Behaviors API: 422 listing every problem with nothing saved, versions, packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from shared.models import Behavior, BehaviorVersion

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"

DEFINITION = {
    "name": "find-contact",
    "account": "acme-prod",
    "inputs": {"email": {"type": "string", "required": True}},
    "steps": [
        {
            "id": "contact",
            "action": "salesforce.query",
            "soql": "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}",
        }
    ],
    "result": "{{ steps.contact.records }}",
}


def _counts(runtime: Any) -> tuple[int, int]:
    with runtime.Session() as session:
        return (
            session.scalar(select(func.count()).select_from(Behavior)),
            session.scalar(select(func.count()).select_from(BehaviorVersion)),
        )


def test_create_get_update_delete(api: Any, runtime: Any, named_account: Any) -> None:
    named_account()
    created = api.post("/behaviors", json=DEFINITION)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["version"] == 1

    yaml_source = (
        "name: find-contact\naccount: acme-prod\nsteps:\n  - {id: a, action: set, vars: {x: 1}}\n"
    )
    updated = api.put("/behaviors/find-contact", json={"source": yaml_source, "format": "yaml"})
    assert updated.status_code == 200, updated.get_json()

    got = api.get("/behaviors/find-contact").get_json()
    assert got["version"] == 2 and got["versions"] == 2
    assert got["source"] == yaml_source and got["format"] == "yaml"
    assert got["definition"]["steps"][0]["id"] == "a"
    old = api.get("/behaviors/find-contact?version=1").get_json()
    assert old["definition"]["steps"][0]["action"] == "salesforce.query"

    listed = api.get("/behaviors").get_json()["behaviors"]
    assert [b["name"] for b in listed] == ["find-contact"]

    assert api.post("/behaviors", json=DEFINITION).status_code == 409
    assert api.delete("/behaviors/find-contact").status_code == 204
    assert api.get("/behaviors/find-contact").status_code == 404
    assert _counts(runtime) == (0, 0)


def test_bad_definition_is_422_listing_every_problem(api: Any, runtime: Any) -> None:
    bad = {
        "name": "Bad!",
        "account": "nowhere",
        "inputs": {"email": {"type": "str"}},
        "steps": [
            {"id": "case", "action": "salesforce.query"},
            {"id": "case", "action": "salesforce.teleport"},
            {"id": "t", "action": "set", "vars": {"x": "{{ ''.__class__.__mro__ }}"}},
            {"id": "u", "action": "fail", "message": "{{ oops }"},
        ],
    }
    response = api.post("/behaviors", json=bad)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    details = error["details"]
    assert "steps[0].soql: required" in details
    assert 'steps[1].id: duplicate "case" (also steps[0])' in details
    assert any(
        d.startswith('steps[1].action: unknown action "salesforce.teleport"') for d in details
    )
    assert any(d.startswith("steps[2].vars.x: template accesses") for d in details)
    assert any(d.startswith("steps[3].message: template syntax error on line 1") for d in details)
    assert (
        "inputs.email.type: must be one of string, integer, number, boolean, object, array, "
        "date, datetime" in (details)
    )
    assert 'account: unknown account "nowhere"' in details
    assert any(d.startswith("name:") for d in details)
    assert len(details) == 8, details
    assert _counts(runtime) == (0, 0)


def test_bad_update_saves_nothing(api: Any, runtime: Any, named_account: Any) -> None:
    named_account()
    assert api.post("/behaviors", json=DEFINITION).status_code == 201
    response = api.put("/behaviors/find-contact", json={**DEFINITION, "steps": [{"id": "x"}]})
    assert response.status_code == 422
    assert "steps[0].action: required" in response.get_json()["error"]["details"]
    renamed = api.put("/behaviors/find-contact", json={**DEFINITION, "name": "other"})
    assert renamed.status_code == 422
    assert _counts(runtime) == (1, 1)


def test_unparseable_source(api: Any) -> None:
    response = api.post("/behaviors", json={"source": "name: x\nsteps: [\n", "format": "yaml"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0].startswith("source: invalid YAML on line")
    assert api.post("/behaviors", data="nope").status_code == 400


def test_package_import(api: Any, runtime: Any, named_account: Any) -> None:
    source = PACKAGE.read_text()
    rejected = api.post("/packages", json={"source": source})
    assert rejected.status_code == 422
    assert 'behaviors[0].account: unknown account "demo"' in rejected.get_json()["error"]["details"]
    assert _counts(runtime) == (0, 0)

    named_account()
    response = api.post("/packages", json={"source": source, "account": "acme-prod"})
    assert response.status_code == 201, response.get_json()
    report = response.get_json()
    assert report["created"] == 5 and report["updated"] == 0
    again = api.post("/packages", json={"source": source, "account": "acme-prod"}).get_json()
    assert again["unchanged"] == 5
    assert api.get("/behaviors/create-lead").get_json()["account"] == "acme-prod"


def test_openapi_describes_the_routes(api: Any) -> None:
    paths = api.get("/openapi.json").get_json()["paths"]
    assert {"post", "get"} <= set(paths["/behaviors"])
    assert {"get", "put", "delete"} <= set(paths["/behaviors/{name}"])
    assert "post" in paths["/packages"]


def test_max_attempts_must_be_a_whole_number(api):
    definition = {"name": "frac", "max_attempts": 2.5,
                  "steps": [{"id": "a", "action": "fail", "message": "m"}]}  # fmt: skip
    response = api.post("/behaviors", json=definition)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == ["max_attempts: must be a whole number"]
    source = "name: frac\nmax_attempts: 2.5\nsteps:\n  - {id: a, action: fail, message: m}\n"
    response = api.post("/behaviors", json={"source": source})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [
        "max_attempts: must be a whole number (line 2)"
    ]
    assert api.get("/behaviors/frac").status_code == 404


def test_behavior_schema_is_served_and_validates_the_shipped_package(api):
    from pathlib import Path

    import jsonschema
    import yaml

    response = api.get("/schemas/behavior.json")
    assert response.status_code == 200
    schema = response.get_json()
    jsonschema.Draft202012Validator.check_schema(schema)
    path = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"
    package = yaml.safe_load(path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(package)] == []
    broken = {**package["behaviors"][0], "max_attempts": 2.5}
    assert not validator.is_valid(broken)
    assert not validator.is_valid({**package["behaviors"][0], "steps": [{"id": "a"}]})


BAD_REFERENCES = """\
name: refs
inputs:
  email: {type: string}
steps:
  - id: early
    action: set
    vars: {x: "{{ steps.late.id }}"}
  - id: contact
    action: salesforce.query
    soql: "DELETE FROM Contact"
  - id: late
    action: set
    vars:
      a: "{{ inputs.emial }}"
      b: "{{ steps.nosuch.id }}"
result: "{{ steps.late.x }}"
"""


def test_undefined_references_are_refused_on_save_with_path_and_line(api):
    response = api.post("/behaviors", json={"source": BAD_REFERENCES})
    assert response.status_code == 422
    assert sorted(response.get_json()["error"]["details"]) == [
        "steps[0].vars.x: steps.late is used before it runs (line 7)",
        "steps[1].soql: must be a SELECT query (line 10)",
        "steps[2].vars.a: inputs.emial is not declared in inputs (line 14)",
        "steps[2].vars.b: steps.nosuch is not a step of this behavior (line 15)",
    ]
    assert api.get("/behaviors/refs").status_code == 404


def test_a_step_cannot_use_itself_and_json_bodies_get_paths(api):
    definition = {"name": "selfref", "steps": [
        {"id": "a", "action": "fail", "message": "m", "when": "steps.a.x"}]}  # fmt: skip
    response = api.post("/behaviors", json=definition)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0].startswith(
        "steps[0].when: steps.a is used before it runs"
    )


def test_soql_without_a_filter_saves_with_a_warning(api, named_account):
    named_account("acme-prod")
    definition = {"name": "raw-soql", "account": "acme-prod",
                  "inputs": {"since": {"type": "date"}, "email": {"type": "string"}},
                  "steps": [{"id": "q", "action": "salesforce.query",
                             "soql": "SELECT Id FROM Case WHERE CreatedDate > {{ inputs.since }}"
                                     " AND Email = {{ inputs.email | soql }}"}]}  # fmt: skip
    response = api.post("/behaviors", json=definition)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["warnings"] == [
        "steps[0].soql: a value is interpolated without | soql or | soql_like; a payload "
        "could change the query"
    ]
    definition["steps"][0]["soql"] = "SELECT Id FROM Case WHERE Email = {{ inputs.email | soql }}"
    response = api.put("/behaviors/raw-soql", json=definition)
    assert response.status_code == 200 and response.get_json()["warnings"] == []


def test_shipped_package_still_imports(api, named_account):
    from pathlib import Path

    named_account("demo")
    source = (Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml").read_text()
    response = api.post("/packages", json={"source": source})
    assert response.status_code == 201, response.get_json()
