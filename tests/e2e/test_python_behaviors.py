"""Python behaviors through FORCEBOT_BEHAVIOR_MODULES in a real worker, and runs on an
account that needs re-authorization."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.models import Account, HttpExchange
from tests.conftest import ROOT

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    no_default_worker_fixture,
    python_behavior_module,
    run_dict,
    save,
    trigger,
    wait_status,
)

MODULE = "fb_test_custom_behaviors"
SOURCE = '''
from shared.behaviors.registry import behavior
from shared.behaviors.templates import soql_literal


@behavior(
    "python-create-contact",
    inputs={"last_name": {"type": "string", "required": True}},
    account="acme-prod",
)
def create_contact(ctx):
    """Create a contact and count the contacts with that last name."""
    sf = ctx.salesforce()
    created = sf.create("Contact", {"LastName": ctx.inputs["last_name"]})
    ctx.log.info("contact=%s", created["id"])
    last_name = soql_literal(ctx.inputs["last_name"])
    found = sf.query_result(f"SELECT Id FROM Contact WHERE LastName = {last_name}")
    return {"id": created["id"], "total": found["totalSize"]}
'''


@pytest.fixture
def behavior_module(tmp_path):
    with python_behavior_module(tmp_path, MODULE, SOURCE, "python-create-contact") as directory:
        yield directory


def test_python_behavior_runs_in_a_worker_with_records(
    runtime, sim, linked_account, behavior_module, no_default_worker, worker_factory
):
    account_id = linked_account()
    worker_factory(
        FORCEBOT_BEHAVIOR_MODULES=MODULE,
        PYTHONPATH=f"{ROOT}:{behavior_module}",
        **FAST_ENV,
    )
    run_id = trigger(runtime, "python-create-contact", {"last_name": "Hopper"})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "succeeded", data
    assert data["result"]["total"] == 1
    assert [r["Id"] for r in sim.control.records("Contact") if r["LastName"] == "Hopper"] == [
        data["result"]["id"]
    ]
    python_steps = [s for s in data["steps"] if s["id"] == "python"]
    assert python_steps and python_steps[0]["status"] == "succeeded"
    # Both HTTP exchanges of the function are recorded, with no token in them.
    text = str(data)
    assert "Bearer " not in text.replace("Bearer [redacted]", "")
    with runtime.Session() as session:
        rows = session.scalars(select(HttpExchange).where(HttpExchange.run_id == run_id)).all()
        token = runtime.crypto.decrypt(session.get(Account, account_id).access_token_enc)
        stored = str([(x.url, x.request_headers, x.request_body, x.response_body) for x in rows])
    assert len(rows) == 2
    assert "Bearer [redacted]" in stored and token not in stored


def test_bad_payload_for_a_python_behavior_is_rejected(runtime, behavior_module):
    from shared import runs

    with runtime.Session() as session, pytest.raises(runs.PayloadInvalid) as info:
        runs.create_run(session, "python-create-contact", {"last_name": 5, "x": 1})
    assert len(info.value.problems) == 2


def test_runs_on_an_account_needing_reauth_fail_with_its_reason(
    runtime, sim, linked_account, worker
):
    account_id = linked_account()
    save(
        runtime,
        """
name: list-cases
account: acme-prod
steps:
  - id: cases
    action: salesforce.query
    soql: SELECT Id FROM Case
""",
    )
    sim.control.revoke_refresh_tokens()
    sim.control.expire_sessions()
    run_id = trigger(runtime, "list-cases", {})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "failed"
    assert data["error"]["code"] == "needs_reauth"
    assert "expired access/refresh token" in data["error"]["message"]
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert account.status == "needs_reauth"
        assert account.status_reason == "expired access/refresh token"
    # A second run fails at once, without another refresh attempt at Salesforce.
    refreshes = sim.control.counters()["rejected_refreshes"]
    second = wait_status(runtime, trigger(runtime, "list-cases", {}), "failed", timeout=60)
    assert second["error"]["code"] == "needs_reauth"
    assert sim.control.counters()["rejected_refreshes"] == refreshes
