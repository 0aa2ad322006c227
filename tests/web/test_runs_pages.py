"""Run pages: list with filters and empty state, detail with steps, buttons with CSRF."""

from __future__ import annotations

import pytest

from shared import runs
from shared.behaviors.store import get_version, save_behavior
from shared.config import RunTimings
from shared.models import Run

NOOP = """
name: noop
inputs:
  n: {type: integer, default: 1}
steps:
  - id: s
    action: set
    vars: {x: "{{ inputs.n }}"}
result: "{{ vars.x }}"
"""


# These tests look at runs before any worker takes them.
pytestmark = pytest.mark.usefixtures("no_worker")


def _run(runtime, execute: bool = False) -> int:
    with runtime.Session.begin() as session:
        if get_version(session, "noop") is None:
            save_behavior(session, NOOP)
        run, _ = runs.create_run(session, "noop", {"n": 4})
        run_id = run.id
    if execute:
        with runtime.Session.begin() as session:
            claim = runs.claim_for_execution(session, run_id, "w")
        runs.execute_claimed(runtime, claim, timings=RunTimings(heartbeat_every=0.2))
    return run_id


def test_pages_need_login(client):
    assert client.get("/runs/").status_code == 302


def test_empty_state(logged_in):
    page = logged_in.client.get("/runs/").get_data(as_text=True)
    assert "No runs yet" in page


def test_list_and_filter(runtime, logged_in):
    done = _run(runtime, execute=True)
    queued = _run(runtime)
    page = logged_in.client.get("/runs/").get_data(as_text=True)
    assert f"/runs/{done}" in page and f"/runs/{queued}" in page
    page = logged_in.client.get("/runs/?status=succeeded").get_data(as_text=True)
    assert f"/runs/{done}" in page and f'/runs/{queued}"' not in page
    page = logged_in.client.get("/runs/?status=failed").get_data(as_text=True)
    assert "No runs match" in page


def test_detail_shows_steps_and_result(runtime, logged_in):
    run_id = _run(runtime, execute=True)
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "succeeded" in page and "<code>s</code>" in page and "Replay" in page
    assert 'hx-trigger="every' not in page  # a finished run is not polled
    assert logged_in.client.get("/runs/424242").status_code == 404


def test_cancel_retry_replay_buttons(runtime, logged_in):
    run_id = _run(runtime)
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Cancel" in page and 'hx-trigger="every 2s"' in page
    token = logged_in.csrf_token(f"/runs/{run_id}")
    assert logged_in.client.post(f"/runs/{run_id}/cancel").status_code == 400  # no CSRF token
    response = logged_in.client.post(f"/runs/{run_id}/cancel", data={"csrf_token": token})
    assert response.status_code == 302
    with runtime.Session() as session:
        assert session.get(Run, run_id).status == "cancelled"
    response = logged_in.client.post(
        f"/runs/{run_id}/retry", data={"csrf_token": token}, follow_redirects=True
    )
    assert "queued again" in response.get_data(as_text=True)
    response = logged_in.client.post(f"/runs/{run_id}/replay", data={"csrf_token": token})
    assert response.status_code == 302 and f"/runs/{run_id}" not in response.headers["Location"]
    with runtime.Session() as session:
        assert session.get(Run, run_id).status == "queued"
        assert session.query(Run).filter_by(replay_of_id=run_id).count() == 1


def test_polling_gets_the_live_fragment_only(runtime, logged_in):
    run_id = _run(runtime)
    fragment = logged_in.client.get(f"/runs/{run_id}", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="run-live"')
    assert "<html" not in text and "queued" in text
    listing = logged_in.client.get("/runs/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert listing.lstrip().startswith('<div id="runs-live"') and "<html" not in listing


def _finish(runtime, run_id, **fields):
    with runtime.Session.begin() as session:
        run = session.get(Run, run_id)
        for key, value in fields.items():
            setattr(run, key, value)


def test_a_cancel_during_the_last_step_is_reported(runtime, logged_in, api):
    run_id = _run(runtime, execute=True)
    _finish(runtime, run_id, cancel_requested=True)  # asked while the last step ran
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "finished before it could stop" in page
    assert api.get(f"/runs/{run_id}").get_json()["finished_before_cancel"] is True
    other = _run(runtime, execute=True)
    assert api.get(f"/runs/{other}").get_json()["finished_before_cancel"] is False


def test_a_cancelled_first_attempt_is_not_called_an_earlier_attempt(runtime, logged_in):
    run_id = _run(runtime)
    error = {"code": "SERVER_UNAVAILABLE", "message": "try later"}
    _finish(runtime, run_id, status="cancelled", attempts=1, error=error)
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "earlier attempt" not in page
    assert "this is the error it had before it was cancelled" in page


def test_retry_offers_the_run_version_and_the_latest(runtime, logged_in):
    run_id = _run(runtime)
    _finish(runtime, run_id, status="failed", error={"code": "X", "message": "broken"})
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP.replace("default: 1", "default: 2"))
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Retry (version 1)" in page and "Retry with latest (version 2)" in page
    token = logged_in.csrf_token(f"/runs/{run_id}")
    response = logged_in.client.post(
        f"/runs/{run_id}/retry",
        data={"csrf_token": token, "version": "latest"},
        follow_redirects=True,
    )
    assert "queued again with version 2" in response.get_data(as_text=True)
    with runtime.Session() as session:
        assert session.get(Run, run_id).behavior_version == 2

    _finish(runtime, run_id, status="failed")
    page = logged_in.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Retry (version 2)" in page and "Retry with latest" not in page
    logged_in.client.post(f"/runs/{run_id}/retry", data={"csrf_token": token})
    with runtime.Session() as session:
        assert session.get(Run, run_id).behavior_version == 2
