"""salesforce.composite and salesforce.get by external id, saved through the API and run by a
real worker process against the simulator over HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from shared.models import Behavior
from tests.conftest import poll

COMPOSITE = """
name: onboard-contacts
account: acme-prod
inputs:
  people: {type: array, required: true}
  all_or_none: {type: boolean, default: true}
steps:
  - id: made
    action: salesforce.composite
    operation: create
    sobject: Contact
    all_or_none: "{{ inputs.all_or_none }}"
    records: "{{ inputs.people }}"
  - id: found
    action: salesforce.get
    when: "{{ steps.made[0].success }}"
    sobject: Contact
    external_id_field: Ext_Id__c
    external_id: "{{ inputs.people[0].Ext_Id__c }}"
    fields: [Id, LastName, Ext_Id__c]
  - id: renamed
    action: salesforce.composite
    when: "{{ steps.made[0].success }}"
    operation: update
    records:
      - {attributes: {type: Contact}, Id: "{{ steps.found.Id }}", Title: "Engineer"}
result:
  made: "{{ steps.made }}"
  found: "{{ steps.found }}"
  renamed: "{{ steps.renamed }}"
"""


def _run(api: Any, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/behaviors/onboard-contacts/runs", json={"payload": payload})
    assert response.status_code == 202, response.get_json()
    run_id = response.get_json()["id"]

    def finished() -> dict[str, Any] | None:
        run = api.get(f"/runs/{run_id}").get_json()
        return run if run["status"] in ("succeeded", "failed") else None

    return poll(finished, timeout=60, interval=0.2, message=f"run {run_id} to finish")


def test_composite_creates_in_one_call_and_get_finds_by_external_id(
    sim, linked_account, worker, api
):
    linked_account(name="acme-prod")
    sim.control.define_field("Contact", "Ext_Id__c", "string", external_id=True)
    assert api.post("/behaviors", json={"source": COMPOSITE}).status_code == 201
    sim.control.reset_counters()
    people = [
        {"LastName": "Lovelace", "Ext_Id__c": "ext/1 & more"},  # needs URL-encoding
        {"LastName": "Hopper", "Ext_Id__c": "ext-2"},
        {"LastName": "Turing", "Ext_Id__c": "ext-3"},
    ]
    run = _run(api, {"people": people})
    assert run["status"] == "succeeded", run["error"]

    made = run["result"]["made"]
    stored = {r["LastName"]: r for r in sim.control.records("Contact")}
    assert [m["success"] for m in made] == [True, True, True]
    assert [m["errors"] for m in made] == [[], [], []]
    assert [m["id"] for m in made] == [stored[p["LastName"]]["Id"] for p in people]
    found = run["result"]["found"]
    assert found["Id"] == made[0]["id"] and found["Ext_Id__c"] == "ext/1 & more"
    assert run["result"]["renamed"] == [{"id": made[0]["id"], "success": True, "errors": []}]
    assert stored["Lovelace"]["Title"] == "Engineer" and stored["Hopper"].get("Title") is None

    paths = [(e["method"], e["path"]) for e in sim.control.log() if "/services/data/" in e["path"]]
    creates = [p for p in paths if p[0] == "POST" and p[1].endswith("/composite/sobjects")]
    assert len(creates) == 1, paths  # three records, one call
    get = next(s for s in run["steps"] if s["id"] == "found")
    assert "/sobjects/Contact/Ext_Id__c/ext%2F1%20%26%20more?" in get["http"][0]["url"]


def test_all_or_none_failure_rolls_back_with_salesforces_errors(sim, linked_account, worker, api):
    linked_account(name="acme-prod")
    sim.control.define_field("Contact", "Ext_Id__c", "string", external_id=True)
    assert api.post("/behaviors", json={"source": COMPOSITE}).status_code == 201
    people = [
        {"LastName": "Lovelace", "Ext_Id__c": "ok-1"},
        {"FirstName": "No last name", "Ext_Id__c": "bad-2"},  # LastName is required
    ]
    run = _run(api, {"people": people})
    assert run["status"] == "succeeded", run["error"]  # Salesforce answers 200 per record

    made = run["result"]["made"]
    assert [m["success"] for m in made] == [False, False]
    assert made[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert made[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert set(made[1]["errors"][0]) == {"statusCode", "message", "fields"}
    assert sim.control.records("Contact") == []  # nothing stays
    assert run["result"]["found"] is None  # skipped: `when` saw the failure

    # Without allOrNone the valid record is saved and the other one reports its error.
    run = _run(api, {"people": people, "all_or_none": False})
    made = run["result"]["made"]
    assert [m["success"] for m in made] == [True, False]
    assert [c["Id"] for c in sim.control.records("Contact")] == [made[0]["id"]]
    assert run["result"]["found"]["Id"] == made[0]["id"]


def test_bad_composite_and_get_steps_are_422_listing_every_problem(api, runtime):
    bad = {
        "name": "bad-composite",
        "steps": [
            {"id": "a", "action": "salesforce.composite", "operation": "merge"},
            {"id": "b", "action": "salesforce.composite", "operation": "delete"},
            {"id": "c", "action": "salesforce.get", "sobject": "Contact"},
            {
                "id": "d",
                "action": "salesforce.get",
                "sobject": "Contact",
                "record_id": "003x",
                "external_id_field": "Ext_Id__c",
                "external_id": "E-1",
            },
        ],
    }
    response = api.post("/behaviors", json=bad)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert any(d.startswith("steps[0].operation:") for d in details), details
    assert "steps[1].ids: required for operation delete" in details
    assert "steps[2]: give either record_id or external_id_field and external_id" in details
    assert "steps[3]: give either record_id or external_id_field and external_id" in details
    assert len(details) == 4, details
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 0


DRY = """
name: composite-dry
account: acme-prod
steps:
  - id: made
    action: salesforce.composite
    operation: create
    sobject: Contact
    records: [{LastName: A}, {LastName: B}]
  - id: changed
    action: salesforce.composite
    operation: update
    records: [{attributes: {type: Contact}, id: 003000000000001AAA, Title: X}]
result: {made: "{{ steps.made }}", changed: "{{ steps.changed }}"}
"""


def test_a_dry_run_sends_no_collection_call_and_answers_per_record(
    sim, linked_account, worker, api, runtime
):
    from shared.behaviors.dry_run import DRY_RUN_ID, DRY_RUN_TRIGGER
    from tests.e2e.runs_support import trigger, wait_status

    linked_account(name="acme-prod")
    assert api.post("/behaviors", json={"source": DRY}).status_code == 201
    run_id = trigger(runtime, "composite-dry", {}, trigger=DRY_RUN_TRIGGER)
    run = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert run["status"] == "succeeded", run["error"]
    ok = {"success": True, "errors": [], "dry_run": True}
    assert run["result"]["made"] == [{"id": DRY_RUN_ID, **ok}, {"id": DRY_RUN_ID, **ok}]
    assert run["result"]["changed"] == [{"id": "003000000000001AAA", **ok}]
    assert sim.control.records("Contact") == []
    assert not [e for e in sim.control.log() if "/composite/" in e["path"]]
