"""SOQL values: literals by type, LIKE patterns, date/datetime inputs through the engine."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pytest
from jinja2 import TemplateError

from shared.behaviors.engine import execute
from shared.behaviors.templates import (
    TemporalInput,
    render_value,
    soql_like,
    soql_literal,
    typed_inputs,
)
from shared.salesforce.client import SalesforceClient
from simulator import soql as sim_soql

from .fakes import FakeClient, RecordingRecorder, context, loaded


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2026, 12, 1), "2026-12-01"),
        (dt.datetime(2026, 12, 1, 9, 0), "2026-12-01T09:00:00Z"),
        (
            dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2026-12-01T09:00:00Z",
        ),
        (1e-05, "0.00001"),
        (1.5e20, "150000000000000000000"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (10**30, "1" + "0" * 30),
        (decimal.Decimal("1E-7"), "0.0000001"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        ("O'Brien", "'O\\'Brien'"),
        ([1, 0.00002, "a"], "(1,0.00002,'a')"),
    ],
)
def test_soql_renders_each_type_as_its_literal(value: Any, expected: str) -> None:
    assert soql_literal(value) == expected


def test_numbers_never_use_exponent_notation_and_parse_back() -> None:
    for value in (1e-05, 3.14e-12, 6.02e23, 123456789.125):
        text = soql_literal(value)
        assert "e" not in text.lower()
        assert decimal.Decimal(text) == decimal.Decimal(repr(value))


def test_soql_like_escapes_wildcards_and_quotes() -> None:
    assert soql_like("100%_off") == "'100\\%\\_off'"
    assert soql_like("O'Brien", "", "%") == "'O\\'Brien%'"
    assert soql_like("a_b", "%", "%") == "'%a\\_b%'"
    with pytest.raises(TemplateError, match="only '%' and '_'"):
        soql_like("x", "' OR Name != '")
    with pytest.raises(TemplateError):
        soql_like(["a"])
    assert render_value("{{ 'a%' | soql_like('', '%') }}", {}) == "'a\\%%'"


def test_typed_inputs_parse_dates_and_datetimes_and_keep_text_for_json() -> None:
    declared = {
        "day": {"type": "date"},
        "since": {"type": "datetime"},
        "name": {"type": "string"},
        "absent": {"type": "date"},
        "odd": {"type": "date"},
    }
    values = typed_inputs(
        declared,
        {
            "day": "2026-12-01",
            "since": "2026-12-01T10:00:00+01:00",
            "name": "2026-12-01",
            "odd": "soon",
        },
    )
    assert isinstance(values["day"], TemporalInput) and values["day"].value == dt.date(2026, 12, 1)
    assert values["since"].value == dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    assert values["since"] == "2026-12-01T09:00:00Z"
    assert values["name"] == "2026-12-01" and not isinstance(values["name"], TemporalInput)
    assert values["absent"] is None and values["odd"] == "soon"
    # Still text wherever a JSON body or a run record takes it.
    assert json.loads(json.dumps({"d": values["day"]})) == {"d": "2026-12-01"}


DATED = {
    "name": "dated",
    "inputs": {
        "since": {"type": "datetime", "required": True},
        "day": {"type": "date", "required": True},
        "name": {"type": "string", "required": True},
    },
    "steps": [
        {
            "id": "found",
            "action": "salesforce.query",
            "soql": "SELECT Id FROM Lead WHERE CreatedDate > {{ inputs.since | soql }}"
            " AND LastName LIKE {{ inputs.name | soql_like('', '%') }}",
        },
        {
            "id": "note",
            "action": "salesforce.create",
            "sobject": "Lead",
            "fields": {"LastName": "{{ inputs.name }}", "Company": "{{ inputs.day }}"},
        },
    ],
    "result": "{{ inputs.day }}",
}


def test_engine_renders_date_inputs_unquoted_and_sends_them_as_text() -> None:
    client = FakeClient()
    payload = {"since": "2026-12-01T10:00:00+01:00", "day": "2026-12-01", "name": "a_b%"}
    result = execute(context(loaded(DATED), payload, RecordingRecorder(), client))
    [query] = [call for call in client.calls if call[0] == "query_result"]
    assert query[1] == (
        "SELECT Id FROM Lead WHERE CreatedDate > 2026-12-01T09:00:00Z AND LastName LIKE 'a\\_b\\%%'"
    )
    sim_soql.parse(query[1])  # a SOQL parser accepts it
    [create] = [call for call in client.calls if call[0] == "create"]
    assert create[2] == {"LastName": "a_b%", "Company": "2026-12-01"}
    assert result == "2026-12-01"


def test_like_pattern_matches_literally_at_the_simulator(sim, runtime, linked_account) -> None:
    account_id = linked_account()
    client = SalesforceClient.for_account(runtime, account_id)
    for name in ("a_b one", "axb two", "a_bc"):
        client.create("Lead", {"LastName": name, "Company": "Acme"})
    soql = "SELECT LastName FROM Lead WHERE LastName LIKE " + soql_like("a_b", "", "%")
    names = sorted(r["LastName"] for r in client.query_result(soql)["records"])
    assert names == ["a_b one", "a_bc"]
