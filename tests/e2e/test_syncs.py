"""Syncs end to end: a real worker, Redis, the simulator over HTTP, both databases.

The simulator holds Contacts with 7 sharing each SystemModstamp, so every page boundary of
2,000 (or 500) falls inside a group of ties: a cursor on SystemModstamp alone would lose or
re-read records there.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.models import Run, SyncedRecord
from tests.conftest import poll, settings_env
from tests.e2e.runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    BeatProcess,
    fast_worker_fixture,
    no_default_worker_fixture,
    save,
    wait_status,
)

ON_CHANGE = """
name: contact-changed
steps:
  - id: note
    action: set
    vars: {change: "{{ inputs.change }}"}
result: "{{ vars.change }}"
"""


def _make_sync(client: Any, account_id: int, **extra: Any) -> dict[str, Any]:
    body = {
        "name": "contacts",
        "account_id": account_id,
        "object": "Contact",
        "fields": ["Email", "LastName"],
        **extra,
    }
    response = client.post("/syncs", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _run_sync(api: Any, runtime: Any, sync_id: int, timeout: float = 120, **body: Any) -> dict:
    response = api.post(f"/syncs/{sync_id}/runs", json=body)
    assert response.status_code == 202, response.get_json()
    return wait_status(runtime, response.get_json()["id"], ("succeeded", "failed"), timeout)


def _local(runtime: Any) -> dict[str, dict[str, Any]]:
    with runtime.Session() as session:
        rows = session.execute(
            select(SyncedRecord.record_id, SyncedRecord.data, SyncedRecord.is_deleted)
        ).all()
    return {r.record_id: {"data": r.data, "is_deleted": r.is_deleted} for r in rows}


def _sim_queries(sim: Any) -> list[str]:
    return [e["query"] for e in sim.control.log() if e["path"].endswith("/queryAll")]


def test_backfill_with_ties_then_exactly_the_changes(api, runtime, sim, linked_account, worker):
    account_id = linked_account()
    ids = sim.control.seed("Contact", 4500, per_timestamp=7)
    sync = _make_sync(api, account_id)

    first = _run_sync(api, runtime, sync["id"])
    assert first["status"] == "succeeded", first["error"]
    progress = first["progress"]
    assert (progress["pages"], progress["records"], progress["created"]) == (3, 4500, 4500)
    assert progress["total_size"] == 4500 and progress["api"] == "rest"
    local = _local(runtime)
    assert set(local) == set(ids) and len(local) == 4500

    modified, deleted = ids[100:200], ids[3000:3050]
    sim.control.modify_records("Contact", modified, {"LastName": "Changed"})
    sim.control.delete_records("Contact", deleted)
    sim.control.clear_log()
    second = _run_sync(api, runtime, sync["id"])
    assert second["status"] == "succeeded", second["error"]
    p = second["progress"]
    assert (p["created"], p["updated"], p["deleted"], p["records"]) == (0, 100, 50, 150)
    (query,) = _sim_queries(sim)
    cursor = api.get(f"/syncs/{sync['id']}").get_json()
    assert "SystemModstamp+%3E+" in query or "SystemModstamp > " in query
    assert "Id+%3E+" in query or "Id > '" in query
    local = _local(runtime)
    assert len(local) == 4500
    assert {i for i, r in local.items() if r["is_deleted"]} == set(deleted)
    assert {i for i, r in local.items() if r["data"]["LastName"] == "Changed"} == set(modified)
    assert cursor["records"] == {"total": 4500, "deleted": 50}
    assert cursor["last_run"]["counts"]["updated"] == 100

    # A third run finds nothing new: no change reported, nothing written.
    third = _run_sync(api, runtime, sync["id"])
    assert (third["progress"]["records"], third["progress"]["updated"]) == (0, 0)


def test_unknown_field_and_object_are_422_and_nothing_saved(api, sim, linked_account):
    account_id = linked_account()
    response = api.post(
        "/syncs",
        json={
            "name": "bad",
            "account_id": account_id,
            "object": "Contact",
            "fields": ["Email", "Nope__c", "AlsoNot"],
        },
    )
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert any("Nope__c" in d and "AlsoNot" in d for d in details), details
    response = api.post(
        "/syncs", json={"name": "bad2", "account_id": account_id, "object": "Widget"}
    )
    assert response.status_code == 422
    assert "Widget" in str(response.get_json()["error"]["details"])
    assert api.get("/syncs").get_json()["syncs"] == []


def test_two_concurrent_run_requests_make_one_run(app, api_token, runtime, sim, linked_account):
    account_id = linked_account()
    headers = {"Authorization": f"Bearer {api_token}"}
    with app.test_client() as c:
        sync = c.post(
            "/api/v1/syncs",
            headers=headers,
            json={"name": "c", "account_id": account_id, "object": "Contact"},
        ).get_json()
    answers: list[Any] = []
    barrier = threading.Barrier(2)

    def post() -> None:
        with app.test_client() as c:
            barrier.wait()
            r = c.post(f"/api/v1/syncs/{sync['id']}/runs", headers=headers, json={})
            answers.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(code for code, _ in answers)
    assert codes == [202, 409], answers
    winner = next(body for code, body in answers if code == 202)
    loser = next(body for code, body in answers if code == 409)
    assert loser["error"]["details"]["run_id"] == winner["id"]
    with runtime.Session() as session:
        assert session.scalar(select(func.count(Run.id)).where(Run.sync_id == sync["id"])) == 1


def test_worker_killed_mid_sync_resumes_from_the_cursor(
    api, runtime, sim, linked_account, settings, fast_worker
):
    account_id = linked_account()
    sim.control.update_settings(default_batch_size=500)
    ids = sim.control.seed("Contact", 1400, per_timestamp=7)
    save(runtime, ON_CHANGE)
    sync = _make_sync(api, account_id, on_change="contact-changed")
    # Page 2 (the first queryMore) hangs long enough for the worker to be killed on it.
    sim.control.add_fault("/services/data/v62.0/query/", status=None, delay_seconds=20)
    victim = fast_worker("victim", concurrency=1)
    beat = BeatProcess({**settings_env(settings), **FAST_ENV})
    try:
        run_id = api.post(f"/syncs/{sync['id']}/runs", json={}).get_json()["id"]

        def one_page() -> dict | None:
            with runtime.Session() as session:
                progress = session.get(Run, run_id).progress or {}
            return progress if progress.get("pages") == 1 else None

        saved = poll(one_page, 60, 0.05, message="the first page to be saved")
        victim.kill()
        fast_worker("rescuer", concurrency=2)
        done = wait_status(runtime, run_id, ("succeeded", "failed"), 120)
    finally:
        beat.stop()
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 1  # the same attempt continued
    local = _local(runtime)
    assert set(local) == set(ids)
    assert done["progress"]["records"] == 1400 and done["progress"]["created"] == 1400
    position = saved["position"]
    resumed = [q for q in _sim_queries(sim) if "Id+%3E+" in q or "Id > '" in q]
    assert resumed and position["id"] in resumed[-1]
    with runtime.Session() as session:
        keys = session.scalars(
            select(Run.idempotency_key).where(Run.behavior_name == "contact-changed")
        ).all()
    assert len(keys) == 1400 and len(set(keys)) == 1400
    assert {k.split(":")[2] for k in keys} == set(ids)


@pytest.mark.parametrize("fault", ["503", "stall"])
def test_a_fault_on_the_nth_page_is_survived_from_the_saved_cursor(
    fault, api, runtime, sim, linked_account, settings, fast_worker
):
    account_id = linked_account()
    sim.control.update_settings(default_batch_size=500)
    ids = sim.control.seed("Contact", 2100, per_timestamp=7)  # pages 500, 500, 500, 500, 100
    sync = _make_sync(api, account_id)
    if fault == "503":
        # The 2nd queryMore (page 3) answers 503: the attempt fails retryably, the retry
        # starts a new query strictly after the saved cursor.
        sim.control.fail_query_page(2)
    else:
        # The 2nd queryMore stalls (within the client's 30 s timeout) while page 2 is applied.
        sim.control.fail_query_page(2, status=None, delay_seconds=3)
    fast_worker(concurrency=1)
    beat = BeatProcess({**settings_env(settings), **FAST_ENV})
    try:
        done = _run_sync(api, runtime, sync["id"])
    finally:
        beat.stop()
    assert done["status"] == "succeeded", done["error"]
    assert sim.control.faults() == []  # the fault fired
    with runtime.Session() as session:
        run = session.get(Run, done["id"])
        retried = run.retries + run.attempts > 1
    assert retried == (fault == "503")  # a 503 is retried; a stall is waited out
    progress = done["progress"]
    # Pages 1-2 were saved before the fault; the retry read only what followed them.
    assert (progress["records"], progress["created"]) == (2100, 2100)
    local = _local(runtime)
    assert set(local) == set(ids) and len(local) == 2100
    queries = _sim_queries(sim)
    if fault == "503":
        # One query at the start, one after the retry, carrying the cursor of page 2's end.
        assert len(queries) == 2, queries
        assert "Id+%3E+" in queries[1] or "Id > '" in queries[1]
    else:
        assert len(queries) == 1, queries


def test_records_api_paged_while_a_sync_changes_records(api, runtime, sim, linked_account, worker):
    account_id = linked_account()
    ids = sim.control.seed("Contact", 3000, per_timestamp=7)
    sync = _make_sync(api, account_id)
    assert _run_sync(api, runtime, sync["id"])["status"] == "succeeded"

    seen: dict[str, str] = {}
    first = api.get("/records/Contact?limit=1000").get_json()
    for r in first["records"]:
        seen[r["id"]] = r["fields"]["LastName"]
    # Between two pages, a sync changes records the client has already seen and some it has
    # not reached yet (the worst moment: they leave the client's path and move to the end).
    touched = ids[:50] + ids[2500:2550]
    sim.control.modify_records("Contact", touched, {"LastName": "Moved"})
    run = api.post(f"/syncs/{sync['id']}/runs", json={}).get_json()
    wait_status(runtime, run["id"], "succeeded", 120)
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/records/Contact?limit=1000&cursor={cursor}").get_json()
        for r in page["records"]:
            seen[r["id"]] = r["fields"]["LastName"]
        cursor = page["next_cursor"]
    assert set(seen) == set(ids)  # none skipped while the sync moved records to the end
    assert all(seen[i] == "Moved" for i in touched)  # and each change was seen
    again: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "/records/Contact?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query).get_json()
        again.extend(page["records"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(again) == 3000 and {r["id"] for r in again} == set(ids)
    # The changed records come last: they took the newest change numbers.
    assert {r["id"] for r in again[-100:]} == set(touched)
    assert all(r["fields"]["LastName"] == "Moved" for r in again[-100:])


def _instance_calls(sim: Any) -> list[dict[str, Any]]:
    return [e for e in sim.control.log() if e["path"].startswith("/services/data/v")]


def test_bulk_and_auto_give_the_same_records_as_rest(api, runtime, sim, linked_account, worker):
    ids = sim.control.seed("Contact", 4500, per_timestamp=7)
    sim.control.delete_records("Contact", ids[:20])
    sim.control.modify_records("Contact", ids[20:40], {"Email": None})  # empty vs null
    accounts = {
        api_name: linked_account(name=f"acct-{api_name}", service_name=f"sim-{api_name}")
        for api_name in ("rest", "bulk", "auto")
    }
    sim.control.update_settings(bulk_page_records=2000)  # 3 results pages, by Sforce-Locator
    calls: dict[str, list[dict[str, Any]]] = {}
    local: dict[str, dict[str, Any]] = {}
    for name, account_id in accounts.items():
        extra = {"bulk_threshold": 100} if name == "auto" else {}
        sync = _make_sync(
            api,
            account_id,
            name=f"contacts-{name}",
            api=name,
            fields=["Email", "LastName", "CreatedDate", "HasOptedOutOfEmail"],
            **extra,
        )
        sim.control.clear_log()
        done = _run_sync(api, runtime, sync["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["progress"]["api"] == ("rest" if name == "rest" else "bulk")
        assert done["progress"]["records"] == 4500
        calls[name] = _instance_calls(sim)
        with runtime.Session() as session:
            rows = session.execute(
                select(
                    SyncedRecord.record_id,
                    SyncedRecord.data,
                    SyncedRecord.is_deleted,
                    SyncedRecord.system_modstamp,
                ).where(SyncedRecord.account_id == account_id)
            ).all()
        local[name] = {r.record_id: (r.data, r.is_deleted, r.system_modstamp) for r in rows}
    assert set(local["rest"]) == set(ids)
    assert local["bulk"] == local["rest"]
    assert local["auto"] == local["rest"]
    assert sum(v[1] for v in local["bulk"].values()) == 20
    bulk_paths = [c["path"] for c in calls["bulk"]]
    assert sum("/results" in p for p in bulk_paths) == 3
    assert not any(p.endswith("/queryAll") and "ORDER" in p for p in bulk_paths)
    assert len(calls["bulk"]) <= 9, bulk_paths
    # A later incremental bulk run reads only what changed, from the saved cursor.
    sim.control.modify_records("Contact", ids[100:110], {"LastName": "Bulk changed"})
    sync_id = api.get("/syncs").get_json()["syncs"][1]["id"]
    assert api.get(f"/syncs/{sync_id}").get_json()["api"] == "bulk"
    again = _run_sync(api, runtime, sync_id)
    assert (again["progress"]["updated"], again["progress"]["records"]) == (10, 10)


def test_cancelled_run_and_the_next_resume_from_the_cursor(
    api, runtime, sim, linked_account, worker
):
    account_id = linked_account()
    sim.control.update_settings(default_batch_size=500)
    ids = sim.control.seed("Contact", 1400, per_timestamp=7)
    sync = _make_sync(api, account_id)
    sim.control.add_fault("/services/data/v62.0/query/", status=None, delay_seconds=3)
    run_id = api.post(f"/syncs/{sync['id']}/runs", json={}).get_json()["id"]

    def started() -> bool:
        with runtime.Session() as session:
            return (session.get(Run, run_id).progress or {}).get("pages") == 1

    poll(started, 60, 0.05, message="the first page")
    assert api.post(f"/runs/{run_id}/cancel").status_code in (200, 202)
    cancelled = wait_status(runtime, run_id, ("cancelled", "succeeded"), 60)
    assert cancelled["status"] == "cancelled"
    read = cancelled["progress"]["records"]
    assert 0 < read < 1400
    cursor = api.get(f"/syncs/{sync['id']}").get_json()["cursor"]
    assert cursor["id"] == cancelled["progress"]["position"]["id"]
    rest = _run_sync(api, runtime, sync["id"])
    assert rest["progress"]["created"] == 1400 - read
    assert rest["progress"]["records"] == 1400 - read  # nothing read twice
    assert set(_local(runtime)) == set(ids)


def test_lookback_rereads_without_reporting_unchanged(api, runtime, sim, linked_account, worker):
    account_id = linked_account()
    ids = sim.control.seed("Contact", 600, per_timestamp=7)
    save(runtime, ON_CHANGE)
    sync = _make_sync(api, account_id, on_change="contact-changed")
    assert _run_sync(api, runtime, sync["id"])["progress"]["created"] == 600
    patched = api.patch(f"/syncs/{sync['id']}", json={"lookback_seconds": 7 * 24 * 3600})
    assert patched.status_code == 200, patched.get_json()
    sim.control.modify_records("Contact", ids[:5], {"LastName": "Late"})
    again = _run_sync(api, runtime, sync["id"])
    p = again["progress"]
    assert p["records"] == 600 and p["unchanged"] == 595
    assert (p["created"], p["updated"], p["deleted"]) == (0, 5, 0)
    with runtime.Session() as session:
        triggered = session.scalar(
            select(func.count(Run.id)).where(Run.behavior_name == "contact-changed")
        )
    assert triggered == 605
    runs = api.get(f"/runs?sync={sync['id']}&trigger=sync").get_json()["runs"]
    assert [r["id"] for r in runs] == [again["id"], runs[1]["id"]] and len(runs) == 2
    assert all(r["sync_id"] == sync["id"] and r["trigger"] == "sync" for r in runs)


def test_cli_sync_run_wait_and_syncs_list(api, runtime, sim, linked_account, settings, worker):
    import subprocess
    import sys

    account_id = linked_account()
    sim.control.seed("Contact", 300, per_timestamp=7)
    _make_sync(api, account_id)

    def forcebot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "forcebot", *args],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = forcebot("sync", "run", "contacts", "--wait")
    assert result.returncode == 0, result.stderr
    assert "succeeded api=rest records=300 created=300" in result.stdout
    listing = forcebot("syncs")
    assert listing.returncode == 0, listing.stderr
    assert "contacts" in listing.stdout and "300" in listing.stdout
    assert "succeeded" in listing.stdout
    missing = forcebot("sync", "run", "nope")
    assert missing.returncode == 2 and "no sync" in missing.stderr


def test_the_package_ships_a_contacts_sync_with_on_change(
    api, runtime, sim, linked_account, worker
):
    from pathlib import Path

    from shared.behaviors.packages import import_package

    linked_account(name="demo")
    ids = sim.control.seed("Contact", 40)
    source = (Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml").read_text()
    with runtime.Session.begin() as session:
        report = import_package(session, source)
    assert "sync contacts: created" in report.notes
    (sync,) = api.get("/syncs").get_json()["syncs"]
    assert sync["on_change"] == "contact-changed" and sync["every_seconds"] == 900
    assert sync["next_run_at"] is not None
    done = _run_sync(api, runtime, sync["id"])
    assert done["status"] == "succeeded" and done["progress"]["created"] == 40
    changes = api.get("/runs?behavior=contact-changed&limit=200").get_json()["runs"]
    assert len(changes) == 40 and {r["trigger"] for r in changes} == {"change"}
    first = wait_status(runtime, changes[-1]["id"], ("succeeded", "failed"), 120)
    assert first["status"] == "succeeded", first["error"]
    assert first["result"]["change"] == "created" and first["result"]["contact_id"] in ids
    with runtime.Session.begin() as session:
        again = import_package(session, source)
    assert "sync contacts: unchanged" in again.notes
