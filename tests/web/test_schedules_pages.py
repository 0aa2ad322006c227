"""Schedules pages: empty state, create with inline problems, list, toggle, preview, delete."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.behaviors.store import save_behavior
from shared.models import Schedule
from tests.e2e.runs_support import NOOP_BEHAVIOR


def form(logged_in, **fields):
    data = {
        "csrf_token": logged_in.csrf_token("/schedules/new"),
        "name": "paris",
        "behavior": "noop",
        "kind": "cron",
        "cron": "0 9 * * *",
        "timezone": "Europe/Paris",
        "payload": '{"n": 1}',
        "enabled": "on",
    }
    data.update(fields)
    return data


def count(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count(Schedule.id)))


def test_empty_state_says_what_to_do(client, logged_in):
    page = client.get("/schedules").get_data(as_text=True)
    assert "No schedules yet" in page and "/schedules/new" in page
    assert 'href="/schedules"' in page  # the nav link


def test_create_list_toggle_delete(client, logged_in, runtime):
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP_BEHAVIOR)
    created = client.post("/schedules/new", data=form(logged_in))
    assert created.status_code == 302, created.get_data(as_text=True)
    page = client.get("/schedules").get_data(as_text=True)
    assert "At 09:00, Europe/Paris" in page and "T09:00:00+0" in page and "never" in page
    with runtime.Session() as session:
        sid = session.scalar(select(Schedule.id))
    token = logged_in.csrf_token("/schedules")
    client.post(f"/schedules/{sid}/toggle", data={"csrf_token": token})
    with runtime.Session() as session:
        assert session.get(Schedule, sid).enabled is False
    assert "paris" in client.get("/behaviors/noop").get_data(as_text=True)
    client.post(f"/schedules/{sid}/delete", data={"csrf_token": token})
    assert count(runtime) == 0


def test_bad_form_lists_every_problem_inline_and_saves_nothing(client, logged_in, runtime):
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP_BEHAVIOR)
    response = client.post(
        "/schedules/new",
        data=form(logged_in, cron="99 * * * *", timezone="Nowhere/City", payload="{oops"),
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "payload: not valid JSON" in page
    assert "cron: not a valid cron expression" in page
    assert "timezone: unknown time zone" in page
    assert "Nowhere/City" in page  # the form keeps what was typed
    assert count(runtime) == 0


def test_preview_shows_the_next_three_fire_times(client, logged_in):
    ok = client.get("/schedules/preview?kind=cron&cron=0+9+*+*+*&timezone=Europe/Paris")
    assert ok.status_code == 200
    assert len(ok.get_json()["next_runs"]) == 3 and ok.get_json()["description"]
    bad = client.get("/schedules/preview?kind=every&every_seconds=0&timezone=Mars")
    assert bad.status_code == 422 and len(bad.get_json()["problems"]) == 2
