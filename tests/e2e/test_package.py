"""The salesforce-bot package imports, and each behavior runs against the simulator.

This drives `engine.execute` directly with the real Salesforce client (real HTTP to the
simulator) and a recording step recorder; the through-the-worker version lives with the runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from shared.behaviors.engine import StepFailed, execute
from shared.behaviors.packages import import_package
from shared.behaviors.store import load_behavior, save_behavior, validate_payload
from shared.models import Account
from shared.salesforce.client import SalesforceClient
from tests.shared.behaviors.fakes import RecordingRecorder, context

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"
RUN_INFO = {"id": 1, "attempt": 1}


@pytest.fixture
def demo(linked_account: Any, runtime: Any) -> int:
    account_id = linked_account(name="demo")
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE.read_text())
    assert report.count("created") == 5
    return account_id


def run(runtime: Any, name: str, payload: dict[str, Any]) -> tuple[Any, RecordingRecorder]:
    with runtime.Session() as session:
        behavior = load_behavior(session, name)
        assert behavior is not None
        inputs, problems = validate_payload(behavior, payload)
        assert problems == []
        accounts = {a.name: a.id for a in session.query(Account)}
    recorder = RecordingRecorder()

    def client_for(account: str | None, on_exchange: Any) -> Any:
        account_id = accounts[account or behavior.account]
        return SalesforceClient.for_account(runtime, account_id, on_exchange=on_exchange)

    ctx = context(behavior, inputs, recorder, client_for=client_for, run_info=RUN_INFO)
    return execute(ctx), recorder


def test_find_contact_by_email(sim: Any, runtime: Any, demo: int) -> None:
    contact_id = sim.control.create_record(
        "Contact", {"LastName": "Lovelace", "Email": "ada@example.com"}
    )
    result, recorder = run(runtime, "find-contact-by-email", {"email": "ada@example.com"})
    assert result["Id"] == contact_id
    assert recorder.statuses() == {"contact": "succeeded"}
    assert recorder.exchanges and recorder.exchanges[0][0] == "contact"
    assert recorder.exchanges[0][1]["status"] == 200
    missing, _ = run(runtime, "find-contact-by-email", {"email": "nobody@example.com"})
    assert missing is None


def test_injection_payload_reaches_soql_quoted(sim: Any, runtime: Any, demo: int) -> None:
    sim.control.create_record("Contact", {"LastName": "Someone", "Email": "s@example.com"})
    sim.control.clear_log()
    payload = "x' OR Name LIKE '%"
    result, _ = run(runtime, "find-contact-by-email", {"email": payload})
    assert result is None  # the OR never became SOQL: no contact matched
    queries = [
        parse_qs(entry["query"])["q"][0]
        for entry in sim.control.log()
        if entry["path"].endswith("/query") or entry["path"].endswith("/query/")
    ]
    assert len(queries) == 1
    assert "WHERE Email = 'x\\' OR Name LIKE \\'%' ORDER BY" in queries[0]


def test_create_lead(sim: Any, runtime: Any, demo: int) -> None:
    lead_id, recorder = run(
        runtime, "create-lead", {"last_name": "Hopper", "company": "Navy", "email": "g@navy.mil"}
    )
    leads = {r["Id"]: r for r in sim.control.records("Lead")}
    assert leads[lead_id]["LastName"] == "Hopper"
    assert leads[lead_id]["Email"] == "g@navy.mil"
    assert leads[lead_id]["LeadSource"] == "Web"
    assert recorder.statuses() == {"lead": "succeeded"}


def test_create_case_for_email(sim: Any, runtime: Any, demo: int) -> None:
    contact_id = sim.control.create_record("Contact", {"LastName": "Curie", "Email": "m@ex.org"})
    result, recorder = run(runtime, "create-case-for-email", {"email": "m@ex.org"})
    assert result["contact_id"] == contact_id
    cases = {r["Id"]: r for r in sim.control.records("Case")}
    case = cases[result["case_id"]]
    assert case["ContactId"] == contact_id and case["Subject"] == "Support request"
    assert recorder.statuses() == {"contact": "succeeded", "case": "succeeded"}

    unknown, _ = run(runtime, "create-case-for-email", {"email": "new@ex.org", "subject": "Hi"})
    assert unknown["contact_id"] is None
    assert {r["Id"]: r for r in sim.control.records("Case")}[unknown["case_id"]]["Subject"] == "Hi"


def test_record_api_limits(sim: Any, runtime: Any, demo: int) -> None:
    sim.control.set_limits(max=15000, usage=120)
    result, recorder = run(runtime, "record-api-limits", {})
    assert result["max"] == 15000
    assert result["used"] == result["max"] - result["remaining"]
    assert 120 <= result["used"] <= 130
    assert recorder.statuses() == {"limits": "succeeded", "check": "skipped"}


def test_non_retryable_error_fails_with_salesforce_code(sim: Any, runtime: Any, demo: int) -> None:
    with runtime.Session.begin() as session:
        save_behavior(
            session,
            "name: bad-query\naccount: demo\nsteps:\n"
            "  - {id: q, action: salesforce.query, soql: 'SELECT Nope FROM Contact'}\n",
        )
        assert session.query(Account).count() == 1
    with pytest.raises(StepFailed) as info:
        run(runtime, "bad-query", {})
    assert info.value.error["step"] == "q"
    assert info.value.error["code"] == "INVALID_FIELD"
