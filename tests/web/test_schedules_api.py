"""/api/v1/schedules: create, read, change, delete; 422 with every problem, nothing saved."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.behaviors.store import save_behavior
from shared.models import Schedule
from tests.e2e.runs_support import NOOP_BEHAVIOR


def setup_behavior(runtime):
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP_BEHAVIOR)


def count(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count(Schedule.id)))


def test_create_read_change_delete(api, runtime):
    setup_behavior(runtime)
    body = {
        "name": "daily",
        "behavior": "noop",
        "cron": "0 9 * * *",
        "timezone": "Europe/Paris",
        "payload": {"n": 2},
    }
    created = api.post("/schedules", json=body)
    assert created.status_code == 201, created.get_json()
    data = created.get_json()
    assert data["enabled"] is True and data["every_seconds"] is None
    assert len(data["next_runs"]) == 3
    assert all(t.endswith(("+01:00", "+02:00")) and "T09:00:00" in t for t in data["next_runs"])
    assert data["next_run_at"].endswith("+00:00")
    assert data["last_run"] is None and data["skipped_slots"] == 0
    sid = data["id"]
    assert api.get(f"/schedules/{sid}").get_json() == data
    assert [s["name"] for s in api.get("/schedules").get_json()["schedules"]] == ["daily"]

    changed = api.patch(f"/schedules/{sid}", json={"every_seconds": 300, "enabled": False})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["cron"] is None and changed.get_json()["every_seconds"] == 300
    assert changed.get_json()["next_run_at"] is None  # disabled

    assert api.delete(f"/schedules/{sid}").get_json() == {"deleted": True}
    assert api.get(f"/schedules/{sid}").status_code == 404
    assert count(runtime) == 0


def test_bad_schedule_is_422_with_every_problem_and_nothing_saved(api, runtime):
    setup_behavior(runtime)
    response = api.post(
        "/schedules",
        json={
            "name": "x",
            "behavior": "noop",
            "cron": "*/15 * * *",
            "every_seconds": 10,
            "timezone": "Europe/Nowhere",
            "payload": {"n": "three", "extra": 1},
        },
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    details = "\n".join(error["details"])
    for fragment in (
        "timezone: unknown time zone",
        "every_seconds: give either cron or every_seconds, not both",
        "payload.n:",
        "payload.extra: unknown input",
    ):
        assert fragment in details, details
    # A body of the wrong shape is refused first, every shape problem listed.
    shape = api.post("/schedules", json={"behavior": 5, "every_seconds": "5", "colour": 1})
    assert shape.status_code == 422
    assert set(shape.get_json()["error"]["details"]) >= {
        "name: required",
        "behavior: Input should be a valid string",
        "colour: unknown field",
    }
    assert api.post("/schedules", json={"name": "x", "behavior": "gone"}).get_json()["error"][
        "details"
    ] == ["cron: give either cron or every_seconds", 'behavior: no behavior named "gone"']
    assert count(runtime) == 0


def test_bad_patch_changes_nothing(api, runtime):
    setup_behavior(runtime)
    sid = api.post(
        "/schedules",
        json={"name": "a", "behavior": "noop", "every_seconds": 60, "payload": {"n": 1}},
    ).get_json()["id"]
    response = api.patch(f"/schedules/{sid}", json={"cron": "nope", "payload": {}})
    assert response.status_code == 422
    assert len(response.get_json()["error"]["details"]) == 2
    data = api.get(f"/schedules/{sid}").get_json()
    assert data["every_seconds"] == 60 and data["payload"] == {"n": 1}


def test_schedules_are_in_the_openapi_document(api):
    spec = api.get("/openapi.json").get_json()
    assert {"post", "get"} <= set(spec["paths"]["/schedules"])
    assert {"get", "patch", "delete"} <= set(spec["paths"]["/schedules/{schedule_id}"])
    assert "requestBody" in spec["paths"]["/schedules"]["post"]
    props = spec["components"]["schemas"]["ScheduleOut"]["properties"]
    assert {"next_runs", "skipped_slots", "last_skipped_at", "last_error", "last_run"} <= set(props)


def test_runs_filter_by_schedule_shows_slot(api, runtime):
    from datetime import timedelta

    from shared.models import utcnow
    from shared.schedules import dispatch_schedules

    setup_behavior(runtime)
    ids = [
        api.post(
            "/schedules",
            json={"name": n, "behavior": "noop", "every_seconds": 60, "payload": {"n": 1}},
        ).get_json()["id"]
        for n in ("a", "b")
    ]
    with runtime.Session.begin() as session:
        for schedule in session.scalars(select(Schedule)):
            schedule.next_run_at = utcnow() - timedelta(seconds=1)
    assert dispatch_schedules(runtime.Session).fired == 2
    listed = api.get(f"/runs?schedule={ids[1]}").get_json()["runs"]
    assert [(r["schedule_id"], r["trigger"]) for r in listed] == [(ids[1], "schedule")]
    assert listed[0]["slot"].endswith("+00:00")
    assert api.get(f"/schedules/{ids[1]}").get_json()["last_run"]["id"] == listed[0]["id"]
    assert api.get("/runs?schedule=x").status_code == 422
    assert api.get(f"/runs?schedule={ids[0]}").get_json()["runs"][0]["schedule_id"] == ids[0]
