"""The engine with the real Salesforce client against the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.engine import StepFailed, execute
from shared.salesforce.client import SalesforceClient

from .fakes import RecordingRecorder, context, loaded


def _ctx(runtime: Any, account_id: int, definition: dict, recorder: RecordingRecorder, **inputs):
    def client_for(account: str | None, on_exchange: Any) -> Any:
        return SalesforceClient.for_account(runtime, account_id, on_exchange=on_exchange)

    return context(loaded(definition), inputs, recorder, client_for=client_for)


LEADS = {
    "name": "leads",
    "steps": [
        {
            "id": "each",
            "action": "foreach",
            "items": "{{ inputs.names }}",
            "steps": [
                {
                    "id": "lead",
                    "action": "salesforce.create",
                    "sobject": "Lead",
                    "fields": {"LastName": "{{ item }}", "Company": "Acme"},
                }
            ],
        },
        {
            "id": "found",
            "action": "salesforce.query",
            "soql": "SELECT Id, LastName FROM Lead WHERE LastName IN {{ inputs.names | soql }}",
            "limit": 2,
        },
        {
            "id": "update",
            "action": "salesforce.update",
            "sobject": "Lead",
            "record_id": "{{ steps.each[0].lead.id }}",
            "fields": {"Company": "Renamed"},
        },
        {
            "id": "raw",
            "action": "http.request",
            "url": "/services/data/v62.0/sobjects/Lead/{{ steps.each[0].lead.id }}",
        },
    ],
    "result": "{{ {'kept': steps.found.records | length, 'total': steps.found.totalSize,"
    " 'company': steps.raw.body.Company, 'status': steps.raw.status} }}",
}


def test_foreach_query_update_and_http_request(sim: Any, runtime: Any, linked_account: Any) -> None:
    account_id = linked_account()
    recorder = RecordingRecorder()
    names = ["Ada", "Grace", "Edsger"]
    result = execute(_ctx(runtime, account_id, LEADS, recorder, names=names))
    assert result == {"kept": 2, "total": 3, "company": "Renamed", "status": 200}
    assert sorted(r["LastName"] for r in sim.control.records("Lead")) == sorted(names)
    keyed = {key for key, _ in recorder.exchanges}
    assert {"each[0].lead", "each[2].lead", "found", "update", "raw"} <= keyed


def test_a_finished_create_is_not_repeated_within_the_attempt(
    sim: Any, runtime: Any, linked_account: Any
) -> None:
    account_id = linked_account()
    recorder = RecordingRecorder()
    sim.control.add_fault(
        "/services/data/v62.0/query",
        count=1,
        status=400,
        error_code="MALFORMED_QUERY",
        message="boom",
    )
    with pytest.raises(StepFailed):
        execute(_ctx(runtime, account_id, LEADS, recorder, names=["Once"]))
    # The same attempt resumes (e.g. the task was redelivered): the create is reused.
    execute(_ctx(runtime, account_id, LEADS, recorder, names=["Once"]))
    assert [r["LastName"] for r in sim.control.records("Lead")] == ["Once"]


def test_http_request_to_another_host_is_refused(
    sim: Any, runtime: Any, linked_account: Any
) -> None:
    account_id = linked_account()
    definition = {
        "name": "leak",
        "steps": [{"id": "out", "action": "http.request", "url": "https://evil.example.com/x"}],
    }
    recorder = RecordingRecorder()
    with pytest.raises(StepFailed) as info:
        execute(_ctx(runtime, account_id, definition, recorder))
    assert info.value.error["step"] == "out"
    assert recorder.exchanges == []


def test_http_request_returns_4xx_as_output(sim: Any, runtime: Any, linked_account: Any) -> None:
    account_id = linked_account()
    definition = {
        "name": "missing",
        "steps": [
            {
                "id": "get",
                "action": "http.request",
                "url": "/services/data/v62.0/sobjects/Lead/00Q000000000000AAA",
            }
        ],
        "result": "{{ steps.get.status }}",
    }
    assert execute(_ctx(runtime, account_id, definition, RecordingRecorder())) == 404
