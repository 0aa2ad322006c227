"""salesforce.composite and salesforce.get by external id: what a definition may say."""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.actions import ActionError, salesforce_composite, salesforce_get
from shared.behaviors.definition import definition_json_schema, validate_definition


def _definition(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "steps": list(steps)}


def test_composite_create_update_delete_are_valid() -> None:
    definition = _definition(
        {
            "id": "made",
            "action": "salesforce.composite",
            "operation": "create",
            "sobject": "Contact",
            "all_or_none": True,
            "records": [{"LastName": "A"}, {"attributes": {"type": "Account"}, "Name": "B"}],
        },
        {
            "id": "changed",
            "action": "salesforce.composite",
            "operation": "update",
            "records": [{"attributes": {"type": "Contact"}, "Id": "{{ steps.made[0].id }}"}],
        },
        {
            "id": "gone",
            "action": "salesforce.composite",
            "operation": "delete",
            "ids": "{{ steps.made | map(attribute='id') | list }}",
        },
    )
    assert validate_definition(definition) == []


def test_composite_problems_are_all_listed() -> None:
    definition = _definition(
        {"id": "a", "action": "salesforce.composite", "operation": "upsert", "records": []},
        {"id": "b", "action": "salesforce.composite", "operation": "create", "ids": ["x"]},
        {
            "id": "c",
            "action": "salesforce.composite",
            "operation": "update",
            "records": [{"LastName": "no id, no type"}],
            "allOrNone": True,
        },
        {
            "id": "d",
            "action": "salesforce.composite",
            "operation": "create",
            "sobject": "Contact",
            "records": [{"LastName": str(i)} for i in range(201)],
        },
    )
    problems = validate_definition(definition)
    assert any(p.startswith("steps[0].operation:") for p in problems), problems
    assert "steps[1].records: required for operation create" in problems
    assert "steps[1].ids: not used by operation create" in problems
    assert "steps[2].records[0]: an update needs the record's Id" in problems
    assert "steps[2].records[0]: no attributes.type and the step has no sobject" in problems
    assert "steps[2].allOrNone: unknown key for salesforce.composite" in problems
    assert any(p.startswith("steps[3].records:") and "200" in p for p in problems), problems


def test_get_takes_exactly_one_form() -> None:
    by_id = {"id": "a", "action": "salesforce.get", "sobject": "Contact", "record_id": "003x"}
    by_ext = {
        "id": "b",
        "action": "salesforce.get",
        "sobject": "Contact",
        "external_id_field": "Ext_Id__c",
        "external_id": "{{ inputs.ext }}",
    }
    assert validate_definition(_definition(by_id, by_ext)) == []

    both = {**by_ext, "id": "c", "record_id": "003x"}
    neither = {"id": "d", "action": "salesforce.get", "sobject": "Contact"}
    half = {"id": "e", "action": "salesforce.get", "sobject": "Contact", "external_id": "E-1"}
    problems = validate_definition(_definition(both, neither, half))
    assert problems == [
        "steps[0]: give either record_id or external_id_field and external_id",
        "steps[1]: give either record_id or external_id_field and external_id",
        "steps[2].external_id_field: required with the other external_id key",
    ]


def test_the_json_schema_describes_both() -> None:
    defs = definition_json_schema()["$defs"]
    composite = defs["Composite"]["properties"]
    assert set(composite) >= {"operation", "records", "ids", "all_or_none", "sobject"}
    assert set(defs["Get"]["properties"]) >= {"record_id", "external_id_field", "external_id"}
    assert defs["Get"]["required"] == ["id", "action", "sobject"]


class _Client:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def composite(self, records: list[dict[str, Any]], *, all_or_none: bool = False) -> list:
        self.calls.append(("POST", records, all_or_none))
        return []

    def composite_update(self, records: list[dict[str, Any]], *, all_or_none: bool) -> list:
        self.calls.append(("PATCH", records, all_or_none))
        return []


def test_rendered_values_are_checked_again_when_the_step_runs() -> None:
    client = _Client()
    bad = [
        ({"operation": "upsert", "records": [{}]}, "operation:"),
        ({"operation": "create", "records": "not a list"}, "records: expected a non-empty list"),
        ({"operation": "create", "records": []}, "records: expected a non-empty list"),
        ({"operation": "create", "records": [{}] * 201, "sobject": "Contact"}, "at most 200"),
        ({"operation": "create", "records": [{"LastName": "A"}]}, "no attributes.type"),
        ({"operation": "create", "records": [{}], "sobject": "C", "all_or_none": "yes"}, "true"),
    ]
    for params, message in bad:
        with pytest.raises(ActionError) as info:
            salesforce_composite(params, client)
        assert info.value.code == "invalid_parameter" and message in info.value.message
    assert client.calls == []  # nothing was sent

    params = {"operation": "update", "sobject": "Contact", "records": [{"Id": "003A", "X": 1}]}
    salesforce_composite(params, client)
    assert client.calls == [
        ("PATCH", [{"attributes": {"type": "Contact"}, "X": 1, "id": "003A"}], False)
    ]
    with pytest.raises(ActionError):
        salesforce_get(
            {"sobject": "Contact", "record_id": "003A", "external_id_field": "E__c"}, client
        )
