"""One page into synced_records on both databases: change detection, change numbers, triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared.models import RecordSequence, Run, Sync, SyncedRecord, utcnow
from shared.syncs.schedule import fire_due
from shared.syncs.soql import build_query
from shared.syncs.store import OnChange, apply_page

NAMES = ["Id", "SystemModstamp", "IsDeleted", "Email"]


def rec(i: int, stamp: str = "2026-11-01T10:00:00.000+0000", **fields):
    return {
        "attributes": {"type": "Contact"},
        "Id": f"003{i:015d}",
        "SystemModstamp": stamp,
        "IsDeleted": False,
        "Email": f"c{i}@example.com",
        **fields,
    }


@pytest.fixture
def sync_row(runtime, linked_account):
    account_id = linked_account()
    with runtime.Session.begin() as session:
        sync = Sync(name="s", account_id=account_id, object="Contact", fields=["Email"])
        session.add(sync)
        session.flush()
        return sync.id, account_id


def apply(runtime, sync_row, records, on_change=None):
    sync_id, account_id = sync_row
    with runtime.Session.begin() as session:
        return apply_page(
            session,
            sync_id=sync_id,
            account_id=account_id,
            obj="Contact",
            names=NAMES,
            records=records,
            on_change=on_change,
        )


def rows(runtime):
    with runtime.Session() as session:
        return {r.record_id: r for r in session.scalars(select(SyncedRecord))}


def test_changes_are_numbered_and_a_page_applied_twice_changes_nothing(runtime, sync_row):
    page = [rec(i) for i in range(5)]
    first = apply(runtime, sync_row, page)
    assert (first.created, first.updated, first.unchanged, first.total_delta) == (5, 0, 0, 5)
    seqs = sorted(r.change_seq for r in rows(runtime).values())
    assert seqs == [1, 2, 3, 4, 5]
    again = apply(runtime, sync_row, page)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert sorted(r.change_seq for r in rows(runtime).values()) == seqs

    # A moved stamp with the same fields: stored, not a change, keeps its number.
    moved = apply(runtime, sync_row, [rec(0, "2026-11-02T10:00:00.000+0000")])
    assert (moved.updated, moved.unchanged) == (0, 1)
    row = rows(runtime)[rec(0)["Id"]]
    assert row.system_modstamp.day == 2 and row.change_seq == 1 and row.last_change == "created"

    # An update and a deletion take the next numbers, in page order.
    later = "2026-11-03T10:00:00.000+0000"
    result = apply(
        runtime, sync_row, [rec(1, later, Email="new@example.com"), rec(2, later, IsDeleted=True)]
    )
    assert (result.updated, result.deleted, result.deleted_delta) == (1, 1, 1)
    stored = rows(runtime)
    assert stored[rec(1)["Id"]].change_seq == 6 and stored[rec(1)["Id"]].last_change == "updated"
    deleted = stored[rec(2)["Id"]]
    assert deleted.is_deleted and deleted.deleted_at is not None and deleted.change_seq == 7
    assert deleted.first_seen_at < deleted.last_changed_at
    with runtime.Session() as session:
        assert session.get(RecordSequence, "Contact").value == 7


def test_on_change_queues_one_run_per_change_even_when_read_again(runtime, sync_row):
    from shared.behaviors.store import save_behavior

    with runtime.Session.begin() as session:
        save_behavior(
            session, "name: on-contact\nsteps:\n  - id: a\n    action: set\n    vars: {}\n"
        )
    hook = OnChange("on-contact", 1, 3, None)
    page = [rec(i) for i in range(3)]
    first = apply(runtime, sync_row, page, hook)
    assert len(first.queued_run_ids) == 3
    assert apply(runtime, sync_row, page, hook).queued_run_ids == []
    changed = apply(
        runtime, sync_row, [rec(0, "2026-11-05T00:00:00.000+0000", Email="x@y.z")], hook
    )
    assert len(changed.queued_run_ids) == 1
    with runtime.Session() as session:
        runs = session.scalars(select(Run).where(Run.behavior_name == "on-contact")).all()
    assert len(runs) == 4
    last = max(runs, key=lambda r: r.id)
    assert last.idempotency_key == f"sync:{sync_row[0]}:{rec(0)['Id']}:2026-11-05T00:00:00.000+0000"
    assert last.payload["change"] == "updated" and last.payload["changed_fields"] == ["Email"]
    assert last.payload["record"]["Email"] == "x@y.z" and last.trigger == "change"
    assert last.sync_id == sync_row[0] and last.status == "queued"


def test_cursor_query_is_spec_s(runtime):
    from datetime import UTC, datetime

    ts = datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)
    soql = build_query("Contact", ["Email", "Id"], (ts, "003000000000000001"))
    assert soql == (
        "SELECT Id, SystemModstamp, IsDeleted, Email FROM Contact WHERE "
        "SystemModstamp > 2026-11-01T10:00:00.123Z OR (SystemModstamp = "
        "2026-11-01T10:00:00.123Z AND Id > '003000000000000001') ORDER BY SystemModstamp, Id"
    )
    with pytest.raises(ValueError):
        build_query("Contact", [], (ts, "x' OR Id != '"))


def test_a_due_slot_fires_once_and_never_beside_a_running_run(runtime, sync_row):
    sync_id, _ = sync_row
    with runtime.Session.begin() as session:
        sync = session.get(Sync, sync_id)
        sync.every_seconds = 60
        sync.next_run_at = utcnow() - timedelta(seconds=1)
    (run_id,) = fire_due(runtime)
    assert fire_due(runtime) == []  # the slot moved on
    with runtime.Session.begin() as session:
        sync = session.get(Sync, sync_id)
        assert sync.next_run_at > utcnow()
        sync.next_run_at = utcnow() - timedelta(seconds=1)  # the next slot, while run_id is queued
    assert fire_due(runtime) == []
    with runtime.Session() as session:
        count = session.scalar(select(func.count(Run.id)).where(Run.sync_id == sync_id))
        assert count == 1 and session.get(Run, run_id).payload["scheduled"] is True


def test_a_sync_cancelled_between_its_claim_and_its_first_step_ends_cancelled(runtime, sync_row):
    """The step's start finds the cancel flag and raises Cancelled: the run says cancelled,
    not failed with an internal error."""
    from shared import runs
    from shared.syncs import execute_sync
    from shared.syncs.runs import start_sync_run

    sync_id, _ = sync_row
    with runtime.Session.begin() as session:
        run_id = start_sync_run(session, sync_id).id
    with runtime.Session.begin() as session:
        claim = runs.claim_for_execution(session, run_id, "w1")
    assert claim is not None
    with runtime.Session.begin() as session:
        session.get(Run, run_id).cancel_requested = True  # asked right after the claim
    outcome = execute_sync(runtime, claim)
    assert outcome.status == "cancelled", outcome
    with runtime.Session() as session:
        assert session.get(Run, run_id).status == "cancelled"
