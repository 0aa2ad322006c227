"""Sync pages and the records browser: empty states, the form, the field picker, Run now."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import Run, Sync
from shared.syncs.store import apply_page


def test_syncs_pages_from_empty_to_a_browsable_record(
    client, logged_in, runtime, sim, linked_account
):
    page = client.get("/syncs/").get_data(as_text=True)
    assert "No syncs yet" in page and "Link a Salesforce" in page
    assert "No synced records yet" in client.get("/records/").get_data(as_text=True)

    account_id = linked_account()
    token = logged_in.csrf_token("/syncs/")
    bad = client.post(
        "/syncs/",
        data={
            "csrf_token": token,
            "name": "c",
            "account_id": str(account_id),
            "object": "Contact",
            "fields": "Email, Bogus__c",
            "api": "auto",
            "enabled": "on",
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Not saved" in bad and "Bogus__c" in bad
    response = client.post(
        "/syncs/",
        data={
            "csrf_token": token,
            "name": "c",
            "account_id": str(account_id),
            "object": "Contact",
            "fields": "Email",
            "api": "auto",
            "enabled": "on",
            "every_seconds": "300",
        },
    )
    assert response.status_code == 302
    with runtime.Session() as session:
        sync = session.scalars(select(Sync)).one()
        assert sync.fields == ["Email"] and sync.next_run_at is not None
    detail = client.get(f"/syncs/{sync.id}").get_data(as_text=True)
    # The field picker lists describe's fields, the chosen one ticked.
    assert 'value="Email" checked' in detail and 'value="LastName"' in detail
    assert "none yet — the next run is a full backfill" in detail and "Not run yet" in detail

    run = client.post(f"/syncs/{sync.id}/run", data={"csrf_token": token}, follow_redirects=True)
    assert "queued" in run.get_data(as_text=True)
    again = client.post(f"/syncs/{sync.id}/run", data={"csrf_token": token}, follow_redirects=True)
    assert "Already running" in again.get_data(as_text=True)
    with runtime.Session() as session:
        assert len(session.scalars(select(Run).where(Run.sync_id == sync.id)).all()) == 1

    with runtime.Session.begin() as session:
        apply_page(
            session,
            sync_id=sync.id,
            account_id=account_id,
            obj="Contact",
            names=["Id", "SystemModstamp", "IsDeleted", "Email"],
            records=[
                {
                    "Id": "003000000000000001",
                    "SystemModstamp": "2026-11-01T00:00:00.000+0000",
                    "IsDeleted": False,
                    "Email": "a@example.com",
                }
            ],
        )
    records = client.get("/records/?object=Contact").get_data(as_text=True)
    assert "003000000000000001" in records and "a@example.com" in records
    missing = client.get("/records/?object=Contact&id=003000000000000009").get_data(as_text=True)
    assert "No Contact record with Id" in missing
