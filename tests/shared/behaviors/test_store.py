"""Saving (a version per save, nothing saved on a problem), loading, payload validation."""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.packages import import_package
from shared.behaviors.registry import behavior, unregister
from shared.behaviors.store import (
    DefinitionInvalid,
    load_behavior,
    save_behavior,
    validate_payload,
)

from .fakes import add_account, behavior_counts

SOURCE = """\
name: greet
account: acme-prod
inputs:
  email: {type: string, required: true, max_length: 20}
  count: {type: integer, default: 1}
  kind: {type: string, enum: [a, b]}
steps:
  - id: hello
    action: set
    vars: {greeting: "hi {{ inputs.email }}"}
result: "{{ vars.greeting }}"
"""


def test_each_save_is_a_new_version(runtime: Any) -> None:
    add_account(runtime)
    with runtime.Session.begin() as session:
        _, v1, created = save_behavior(session, SOURCE)
        assert created and v1.version == 1
    with runtime.Session.begin() as session:
        row, v2, created = save_behavior(session, SOURCE.replace("hi ", "hello "))
        assert not created and v2.version == 2 and row.current_version == 2
    with runtime.Session() as session:
        assert load_behavior(session, "greet").version == 2
        old = load_behavior(session, "greet", version=1)
        assert old.definition["steps"][0]["vars"]["greeting"] == "hi {{ inputs.email }}"
    assert behavior_counts(runtime) == (1, 2)


def test_unknown_account_is_a_problem_and_nothing_is_saved(runtime: Any) -> None:
    bad = SOURCE.replace("vars: {", "account: nowhere\n    vars: {")
    with runtime.Session.begin() as session:
        with pytest.raises(DefinitionInvalid) as info:
            save_behavior(session, bad)
    assert info.value.problems == [
        "steps[0].account: unknown key for set",
        'account: unknown account "acme-prod"',
        'steps[0].account: unknown account "nowhere"',
    ]
    assert behavior_counts(runtime) == (0, 0)


def test_expected_name(runtime: Any) -> None:
    add_account(runtime)
    with runtime.Session.begin() as session:
        with pytest.raises(DefinitionInvalid) as info:
            save_behavior(session, SOURCE, expected_name="other")
    assert info.value.problems == ['name: must stay "other" (rename by creating a new one)']


def test_validate_payload_lists_every_problem(runtime: Any) -> None:
    add_account(runtime)
    with runtime.Session.begin() as session:
        save_behavior(session, SOURCE)
    with runtime.Session() as session:
        loaded = load_behavior(session, "greet")
    values, problems = validate_payload(loaded, {"email": "a@b.c"})
    assert problems == [] and values == {"email": "a@b.c", "count": 1}
    _, problems = validate_payload(loaded, {"count": "3", "kind": "c", "extra": 1})
    assert problems == [
        "payload.extra: unknown input (expected email, count, kind)",
        "payload.email: required",
        "payload.count: expected integer, got string",
        'payload.kind: must be one of "a", "b"',
    ]
    _, problems = validate_payload(loaded, {"email": "x" * 21})
    assert problems == ["payload.email: longer than 20"]
    _, problems = validate_payload(loaded, {"email": "x" * 70_000})
    assert problems[0].startswith("payload: ") and "limit" in problems[0]
    _, problems = validate_payload(loaded, ["not", "an", "object"])
    assert problems == ["payload: expected an object"]


def test_python_behaviors_load_from_the_registry(runtime: Any) -> None:
    @behavior("py-hello", inputs={"name": {"type": "string", "required": True}}, account="acme")
    def hello(ctx: Any) -> str:
        """Say hello."""
        return "hi " + ctx.inputs["name"]

    try:
        with runtime.Session() as session:
            loaded = load_behavior(session, "py-hello")
        assert loaded.function is hello and loaded.version is None
        assert loaded.account == "acme" and loaded.description == "Say hello."
        assert validate_payload(loaded, {})[1] == ["payload.name: required"]
    finally:
        unregister("py-hello")
    with runtime.Session() as session:
        assert load_behavior(session, "py-hello") is None


def test_registry_refuses_bad_definitions() -> None:
    with pytest.raises(ValueError, match="name"):
        behavior("Bad Name")
    with pytest.raises(ValueError, match="inputs.x.type"):
        behavior("ok-name", inputs={"x": {"type": "text"}})


PACKAGE = """\
name: pkg
behaviors:
  - name: one
    account: demo
    steps: [{id: a, action: set, vars: {x: 1}}]
  - name: two
    account: demo
    steps: [{id: a, action: fail, message: stop}]
schedules:
  - {name: every-minute, behavior: one, every_seconds: 60}
"""


def test_package_import_reports_created_updated_unchanged(runtime: Any) -> None:
    add_account(runtime, "demo")
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE)
    assert [(e["name"], e["status"]) for e in report.behaviors] == [
        ("one", "created"),
        ("two", "created"),
    ]
    assert report.notes == ["schedule every-minute: created"]
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE.replace("message: stop", "message: halt"))
    assert [(e["name"], e["status"]) for e in report.schedules] == [("every-minute", "unchanged")]
    assert [(e["name"], e["status"], e["version"]) for e in report.behaviors] == [
        ("one", "unchanged", 1),
        ("two", "skipped", 1),
    ]
    assert report.behaviors[1]["changed_keys"] == ["steps"]
    assert "-  message: stop\n" in report.behaviors[1]["diff"]
    assert "+  message: halt" in report.behaviors[1]["diff"]
    assert behavior_counts(runtime) == (2, 2)
    with runtime.Session.begin() as session:
        report = import_package(
            session, PACKAGE.replace("message: stop", "message: halt"), update=True
        )
    assert [(e["name"], e["status"], e["version"]) for e in report.behaviors] == [
        ("one", "unchanged", 1),
        ("two", "updated", 2),
    ]


def test_package_dry_run_saves_nothing(runtime: Any) -> None:
    add_account(runtime, "demo")
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE, dry_run=True)
    assert report.to_dict()["dry_run"] is True
    assert [(e["name"], e["status"], e["version"]) for e in report.behaviors] == [
        ("one", "created", 1),
        ("two", "created", 1),
    ]
    assert behavior_counts(runtime) == (0, 0)


def test_an_invalid_package_is_rejected_whole(runtime: Any) -> None:
    bad = PACKAGE.replace("{id: a, action: fail, message: stop}", "{id: a, action: fail}")
    with runtime.Session.begin() as session:
        with pytest.raises(DefinitionInvalid) as info:
            import_package(session, bad)
    assert info.value.problems == [
        'behaviors[0].account: unknown account "demo"',
        "behaviors[1].steps[0].message: required",
        'behaviors[1].account: unknown account "demo"',
    ]
    assert behavior_counts(runtime) == (0, 0)


def test_package_account_override(runtime: Any) -> None:
    add_account(runtime, "acme-prod")
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE, account="acme-prod")
    assert report.count("created") == 2
    with runtime.Session() as session:
        assert load_behavior(session, "one").account == "acme-prod"
