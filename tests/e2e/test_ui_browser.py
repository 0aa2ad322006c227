"""Issue 13's views in a real browser (Debian's Chromium through Playwright; skipped without
it): each test drives one defect fix or new view the way a user would.

Set FORCEBOT_SCREENSHOTS=DIR to keep screenshots of the views (docs/screenshots/ holds the
ones the README shows).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.behaviors.store import get_version, save_behavior
from shared.models import Account, Behavior, Run, Service
from tests.conftest import ROOT

from .runs_support import fast_worker_fixture, no_default_worker_fixture  # noqa: F401 - fixtures

PACKAGE = Path(ROOT) / "packages" / "salesforce-bot.yaml"


WATCHED = """\
name: watched
account: acme-prod
steps:
  - id: contacts
    action: salesforce.query
    soql: "SELECT Id FROM Contact"
  - id: limits
    action: http.request
    method: GET
    url: /services/data/v62.0/limits
result: "{{ steps.contacts.totalSize }}"
"""


@pytest.fixture
def no_worker(settings: Any, _session_workers: dict[str, Any]) -> None:
    """Stop this backend's shared worker, so a test decides when work is taken."""
    proc = _session_workers.get(settings.database_url)
    if proc is not None:
        proc.stop()


def screenshot(page: Any, name: str) -> None:
    """Keep a screenshot of the page when FORCEBOT_SCREENSHOTS names a directory."""
    target = os.environ.get("FORCEBOT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def _accounts(runtime: Any, *names: str) -> None:
    with runtime.Session.begin() as session:
        service = Service(
            name="s",
            client_id="c",
            client_secret_enc=runtime.crypto.encrypt("x"),
            login_url="https://login.example",
        )
        session.add(service)
        session.flush()
        for name in names:
            session.add(Account(service_id=service.id, name=name))


def _account_of(runtime: Any, name: str) -> tuple[int, str]:
    with runtime.Session() as session:
        version = get_version(session, name)
        assert version is not None
        return version.version, version.definition["account"]


def test_import_changes_nothing_until_confirmed(live_server: Any, admin_page: Any) -> None:
    runtime = live_server.runtime
    _accounts(runtime, "acme-prod", "other")
    page = admin_page("/behaviors/import")
    page.select_option("#account", "acme-prod")
    page.click("text=Check the bundled Salesforce Bot package")
    page.wait_for_selector("#import-preview")
    assert "Nothing has been saved yet" in page.inner_text("#import-preview")
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 0
    page.click("#confirm-create")
    page.wait_for_selector("text=5 created")

    # The same package for another account: the preview shows the diff, and keeps everything.
    page.goto(live_server.url + "/behaviors/import")
    page.select_option("#account", "other")
    page.click("text=Check the bundled Salesforce Bot package")
    preview = page.inner_text("#import-preview")
    assert "differs from the stored version 1" in preview
    assert "-account: acme-prod" in preview and "+account: other" in preview
    screenshot(page, "import-preview")
    assert _account_of(runtime, "create-lead") == (1, "acme-prod")
    page.click("#confirm-create")
    page.wait_for_selector("text=kept as they were")
    assert _account_of(runtime, "create-lead") == (1, "acme-prod")

    # Only the explicit "Create and update" changes them.
    page.goto(live_server.url + "/behaviors/import")
    page.select_option("#account", "other")
    page.click("text=Check the bundled Salesforce Bot package")
    page.click("#confirm-update")
    page.wait_for_selector("text=5 updated")
    assert _account_of(runtime, "create-lead") == (2, "other")


def test_a_run_is_watched_from_queued_to_succeeded_with_an_http_section_left_open(
    live_server: Any,
    sim: Any,
    linked_account: Any,
    no_worker: None,
    worker_factory: Any,
    admin_page: Any,
) -> None:
    runtime = live_server.runtime
    linked_account(name="acme-prod")
    with runtime.Session.begin() as session:
        save_behavior(session, WATCHED)
    # The second step's request is held for a few seconds: the first step's HTTP section is
    # opened while the run is still running, and must stay open through the live updates.
    sim.control.add_fault("/services/data/v62.0/limits", status=None, delay_seconds=8)
    page = admin_page("/behaviors/watched")
    page.click("text=Run now")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    assert page.get_attribute("#run-live", "data-status") == "queued"
    loaded = page.evaluate("performance.getEntriesByType('navigation').length")

    worker_factory(concurrency=1)
    first = page.locator("details.exchange").first
    first.wait_for(timeout=60000)
    assert page.get_attribute("#run-live", "data-status") == "running"
    first.locator("summary").click()
    assert first.get_attribute("open") is not None
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=60000)

    assert page.locator("details.exchange").count() == 2
    assert page.locator("details.exchange").first.get_attribute("open") is not None
    assert "Response body" in page.locator("details.exchange").first.inner_text()
    # The query's JSON answer is shown indented, one field a line, not as one long line.
    body = page.locator("details.exchange").first.locator("pre").last.inner_text()
    assert body.startswith('{\n  "') and '\n  "totalSize": ' in body, body[:200]
    # Updated in place: still the page that was loaded, no reload happened.
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loaded
    assert page.evaluate("window.performance.navigation.type") == 0
    with runtime.Session() as session:
        assert session.get(Run, run_id).status == "succeeded"
    screenshot(page, "run-detail")


LAST_STEP_SLOW = """\
name: slow-last
account: acme-prod
steps:
  - id: limits
    action: http.request
    method: GET
    url: /services/data/v62.0/limits
"""


def test_a_cancel_during_the_last_step_says_it_finished_before_it_could_stop(
    live_server: Any, sim: Any, linked_account: Any, worker: Any, admin_page: Any
) -> None:
    runtime = live_server.runtime
    linked_account(name="acme-prod")
    with runtime.Session.begin() as session:
        save_behavior(session, LAST_STEP_SLOW)
    sim.control.add_fault("/services/data/v62.0/limits", status=None, delay_seconds=8)
    page = admin_page("/behaviors/slow-last")
    page.click("text=Run now")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#run-live[data-status="running"]', timeout=60000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button.danger:has-text('Cancel')")
    page.wait_for_selector("text=if it is on its last step, it finishes first")
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=60000)
    assert "finished before it could stop" in page.inner_text("#cancel-outcome")
    answer = page.request.get(f"{live_server.url}/api/v1/openapi.json")
    assert answer.status == 200  # a logged-in browser reads the document with its session
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.cancel_requested) == ("succeeded", True)


def test_retry_offers_the_failed_version_and_the_latest(
    live_server: Any, sim: Any, linked_account: Any, worker: Any, admin_page: Any
) -> None:
    runtime = live_server.runtime
    linked_account(name="acme-prod")
    broken = WATCHED.replace("SELECT Id FROM Contact", "SELECT Nmae FROM Contact")
    with runtime.Session.begin() as session:
        save_behavior(session, broken.replace("name: watched", "name: fixable"))
    page = admin_page("/behaviors/fixable")
    page.click("text=Run now")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#run-live[data-status="failed"]', timeout=60000)
    assert page.locator("#retry-latest").count() == 0
    with runtime.Session.begin() as session:
        save_behavior(session, WATCHED.replace("name: watched", "name: fixable"))
    page.reload()
    assert page.inner_text("#retry-same") == "Retry (version 1)"
    assert page.inner_text("#retry-latest") == "Retry with latest (version 2)"
    page.click("#retry-latest")
    page.wait_for_selector("text=queued again with version 2")
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=60000)
    with runtime.Session() as session:
        assert session.get(Run, run_id).behavior_version == 2


def test_api_reference_page_lists_the_operations(live_server: Any, admin_page: Any) -> None:
    page = admin_page("/api-reference")
    assert "Forcebot API" in page.inner_text("h1")
    page.click("summary:has-text('/behaviors/{name}/runs')")
    assert page.locator("details.operation[open]").count() == 1
    page.click("a:has-text('openapi.json')")
    assert '"openapi"' in page.content()


BAD_STEP = """\
name: typo
account: acme-prod
steps:
  - id: ok
    action: set
    vars: {a: 1}
  - id: broken
    action: salesforce.qurey
"""


def test_the_editor_marks_an_error_at_its_line(live_server: Any, admin_page: Any) -> None:
    runtime = live_server.runtime
    _accounts(runtime, "acme-prod")
    page = admin_page("/behaviors/new")
    page.wait_for_selector(".CodeMirror")
    assert page.locator(".CodeMirror-linenumber").count() > 3  # line numbers
    page.evaluate("text => window.forcebotEditor.setValue(text)", BAD_STEP)
    page.click("button:has-text('Create')")
    page.wait_for_selector(".problem-marker")
    assert 'unknown action "salesforce.qurey"' in page.inner_text(".flash.error")
    marked = page.evaluate(
        "() => { const cm = window.forcebotEditor, out = [];"
        " for (let i = 0; i < cm.lineCount(); i++) {"
        "   const info = cm.lineInfo(i);"
        "   if (info.gutterMarkers && info.gutterMarkers['problem-markers'])"
        "     out.push([i + 1, info.gutterMarkers['problem-markers'].title]); }"
        " return out; }"
    )
    assert [line for line, _ in marked] == [8]
    assert marked[0][1].startswith('steps[1].action: unknown action "salesforce.qurey"')
    assert page.locator(".cm-problem-line").count() == 1
    assert page.evaluate("window.forcebotEditor.getValue()") == BAD_STEP  # kept for fixing
    screenshot(page, "editor-error")
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 0

    # Fixed and saved twice: the versions compare side by side.
    fixed = BAD_STEP.replace("salesforce.qurey", "set\n    vars: {b: 2}")
    page.evaluate("text => window.forcebotEditor.setValue(text)", fixed)
    page.click("button:has-text('Create')")
    page.wait_for_url(live_server.url + "/behaviors/typo")
    page.evaluate("text => window.forcebotEditor.setValue(text)", fixed.replace("b: 2", "b: 3"))
    page.click("text=Save as a new version")
    page.wait_for_selector("text=Saved version 2")
    page.click("text=diff with v1")
    table = page.inner_text("#version-diff").replace("\xa0", " ")
    assert "v1" in table and "v2" in table and "b: 2" in table and "b: 3" in table
    assert page.locator("#version-diff .diff_chg").count() >= 2  # both sides marked


def test_a_token_is_created_and_revoked(live_server: Any, admin_page: Any) -> None:
    page = admin_page("/admin/")
    page.fill("#token-name", "ci-pipeline")
    page.click("text=Create token")
    plaintext = page.inner_text("#new-token pre").strip()
    url = f"{live_server.url}/api/v1/behaviors"
    import requests

    headers = {"Authorization": f"Bearer {plaintext}"}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    page.goto(live_server.url + "/admin/")
    assert plaintext not in page.content()
    row = page.locator("#tokens tr", has_text="ci-pipeline")
    assert "never" not in row.inner_text()  # the use above is shown
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector("text=Revoked the token ci-pipeline")
    assert "revoked" in page.locator("#tokens tr", has_text="ci-pipeline").inner_text()
    assert requests.get(url, headers=headers, timeout=10).status_code == 401


def test_dashboard_accounts_and_workers_update_in_place(
    live_server: Any, sim: Any, linked_account: Any, worker: Any, admin_page: Any
) -> None:
    runtime = live_server.runtime
    linked_account(name="acme-prod")
    with runtime.Session.begin() as session:
        save_behavior(session, WATCHED)
    page = admin_page("/")
    loaded = page.evaluate("performance.timeOrigin")
    assert "Runs succeeded" in page.inner_text("#dashboard-live")
    from shared.runs import create_run
    from worker.tasks.runs import enqueue

    with runtime.Session.begin() as session:
        run, _ = create_run(session, "watched", {}, trigger="manual")
        run_id = run.id
    enqueue(run_id)
    # The dashboard (polled every 5 s) shows the run without a reload.
    page.wait_for_selector(f"#dashboard-live a[href$='/runs/{run_id}']", timeout=30000)
    page.wait_for_selector("#dashboard-live td span.badge.succeeded", timeout=60000)
    assert page.evaluate("performance.timeOrigin") == loaded
    screenshot(page, "dashboard")

    page.goto(live_server.url + "/accounts")
    assert "expires in 1h 59m" in page.inner_text("#accounts-live") or "expires in 2h" in (
        page.inner_text("#accounts-live")
    )
    screenshot(page, "accounts")

    page.goto(live_server.url + "/workers/")
    page.wait_for_selector("#workers", timeout=30000)
    assert worker.hostname_prefix in page.inner_text("#workers")
    assert page.locator("#runs-chart rect.bar.succeeded").count() >= 1
    screenshot(page, "workers")


DRY = """\
name: dry-case
account: acme-prod
inputs:
  email: {type: string, required: true}
steps:
  - id: contact
    action: salesforce.query
    soql: "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}"
  - id: case
    action: salesforce.create
    sobject: Case
    fields: {Subject: "Help", ContactId: "{{ steps.contact.records[0].Id }}"}
result: "{{ steps.case.id }}"
"""


def test_a_dry_run_sends_reads_and_no_write(
    live_server: Any, sim: Any, linked_account: Any, worker: Any, admin_page: Any
) -> None:
    runtime = live_server.runtime
    linked_account(name="acme-prod")
    contact = sim.control.create_record(
        "Contact", {"LastName": "Lovelace", "Email": "ada@acme.example"}
    )
    with runtime.Session.begin() as session:
        save_behavior(session, DRY)
    cases_before = len(sim.control.records("Case"))
    sim.control.clear_log()
    page = admin_page("/behaviors/dry-case")
    page.fill("#payload", '{"email": "ada@acme.example"}')
    page.click("#dry-run")
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#run-live[data-status="succeeded"]', timeout=60000)
    assert "Dry run." in page.inner_text("#dry-run-note")
    write = page.locator("details.exchange", has_text="not sent")
    assert write.count() == 1
    write.locator("summary").click()
    shown = write.inner_text()
    assert "POST" in shown and "/sobjects/Case" in shown and contact in shown  # the exact body
    screenshot(page, "dry-run")

    log = sim.control.log()
    methods = [(entry.get("method"), entry.get("path", "")) for entry in log]
    assert any(m == "GET" and "/query" in p for m, p in methods), methods
    assert not any(m in ("POST", "PATCH", "DELETE") and "/services/data/" in p for m, p in methods)
    assert len(sim.control.records("Case")) == cases_before
    from shared.runs import load_run, run_to_dict

    with runtime.Session() as session:
        answer = run_to_dict(load_run(session, run_id))
    assert answer["dry_run"] is True and answer["result"] == "000DRYRUN000000AAA"


def test_a_schedules_last_run_and_skipped_slots_change_in_place(
    live_server: Any, sim: Any, linked_account: Any, fast_worker: Any, admin_page: Any
) -> None:
    from shared.schedules import save_schedule
    from tests.conftest import settings_env

    from .runs_support import FAST_ENV, LIMITS_BEHAVIOR, BeatProcess

    runtime = live_server.runtime
    linked_account(name="acme-prod")
    with runtime.Session.begin() as session:
        save_behavior(session, LIMITS_BEHAVIOR)
        schedule_id = save_schedule(
            session, {"name": "tick", "behavior": "record-limits", "every_seconds": 2}
        ).id
    # The first run is held for a while: slots that come meanwhile are skipped and counted.
    sim.control.add_fault("/services/data/v62.0/limits", status=None, delay_seconds=8)
    page = admin_page("/schedules")
    row = f"#schedules-live tr[data-schedule='{schedule_id}']"
    assert "never" in page.inner_text(f"{row} td.last-run")
    assert page.inner_text(f"{row} td.skipped").strip() == "0"
    loaded = page.evaluate("performance.timeOrigin")

    fast_worker(concurrency=2)  # one slot for the held run, one for beat's ticks
    beat = BeatProcess({**settings_env(live_server.settings), **FAST_ENV})
    try:
        page.wait_for_selector(f"{row} td.last-run .badge.running", timeout=60000)
        page.wait_for_function(
            "sel => parseInt(document.querySelector(sel).innerText, 10) > 0",
            arg=f"{row} td.skipped",
            timeout=60000,
        )
        page.wait_for_selector(f"{row} td.last-run .badge.succeeded", timeout=60000)
    finally:
        beat.stop()
    assert "last " in page.inner_text(f"{row} td.skipped")  # when the last slot was skipped
    assert page.evaluate("performance.timeOrigin") == loaded  # no reload happened
    screenshot(page, "schedules")


def test_a_syncs_progress_bar_moves_and_finishes_in_place(
    live_server: Any, sim: Any, linked_account: Any, worker: Any, admin_page: Any
) -> None:
    from shared.syncs import create_sync, describe_fields

    runtime = live_server.runtime
    account_id = linked_account(name="acme-prod")
    sim.control.update_settings(default_batch_size=500)
    sim.control.seed("Contact", 1400, per_timestamp=7)
    with runtime.Session.begin() as session:
        sync_id = create_sync(
            session,
            {
                "name": "contacts",
                "account_id": account_id,
                "object": "Contact",
                "fields": ["Email"],
                "api": "rest",
            },
            lambda account, obj: describe_fields(runtime, account, obj),
        ).id
    # Pages two and three are held, so the bar is seen part-way.
    sim.control.add_fault("/services/data/v62.0/query/", count=2, status=None, delay_seconds=4)
    page = admin_page(f"/syncs/{sync_id}")
    page.click("#run-now")
    page.wait_for_selector("text=queued")
    loaded = page.evaluate("performance.timeOrigin")
    # What the user is editing in the definition form survives the live updates.
    page.fill("#lookback_seconds", "42")
    page.locator("input[name=field][value=LastName]").check()

    seen: list[float] = []
    for floor in (500, 1000):
        page.wait_for_function(
            "floor => { const bar = document.querySelector('#sync-progress');"
            " return bar && bar.value >= floor && bar.value < bar.max; }",
            arg=floor,
            timeout=60000,
        )
        seen.append(page.evaluate("document.querySelector('#sync-progress').value"))
        assert page.evaluate("document.querySelector('#sync-progress').max") == 1400
    assert seen[0] < seen[1]  # it moved
    screenshot(page, "sync-progress")
    page.wait_for_selector("#sync-last-run .badge.succeeded", timeout=60000)
    assert "1400 records read" in page.inner_text("#sync-last-run")
    assert page.locator("#sync-progress").count() == 0
    assert page.locator("#sync-history .badge.succeeded").count() == 1
    assert page.input_value("#lookback_seconds") == "42"
    assert page.locator("input[name=field][value=LastName]").is_checked()
    assert page.evaluate("performance.timeOrigin") == loaded  # no reload happened


def test_the_accounts_usage_chart_from_recorded_samples(
    live_server: Any, sim: Any, linked_account: Any, admin_page: Any
) -> None:
    from datetime import timedelta

    from shared import usage
    from shared.models import utcnow

    runtime = live_server.runtime
    busy = linked_account(name="acme-prod")
    quiet = linked_account(name="quiet", service_name="other")
    page = admin_page("/accounts")
    cell = page.locator("#accounts-live tr", has_text="acme-prod").locator("td.usage-24h")
    assert "no samples yet" in cell.inner_text()
    loaded = page.evaluate("performance.timeOrigin")

    # Thirty hours of hourly samples, as beat's task writes them from the account row (the
    # figure the Salesforce client keeps there); the last ones cross the reserve line.
    now = utcnow()
    for hours_ago in range(30, -1, -1):
        with runtime.Session.begin() as session:
            account = session.get(Account, busy)
            account.api_usage_used = 1000 + 450 * (30 - hours_ago)
            account.api_usage_max = 15000
            account.api_usage_at = now - timedelta(hours=hours_ago, minutes=1)
            usage.record_samples(session, now - timedelta(hours=hours_ago))
    # The accounts table is polled: the sparkline appears in place.
    cell.locator("svg.usage-chart rect.sample").first.wait_for(timeout=30000)
    assert page.evaluate("performance.timeOrigin") == loaded
    assert 24 <= cell.locator("rect.sample").count() <= 25  # the last 24 hours only
    screenshot(page, "accounts-24h")

    page.goto(f"{live_server.url}/accounts/{busy}")
    chart = page.locator("#usage-history #usage-chart")
    assert 24 <= chart.locator("rect.sample").count() <= 25
    assert chart.locator("line.reserve").count() == 1  # the 90 % line
    assert chart.locator("rect.sample.above").count() >= 1
    assert "14500 / 15000" in chart.locator("rect.sample").last.inner_html()
    assert "14500 of 15000" in chart.get_attribute("aria-label")
    screenshot(page, "account-usage")

    page.goto(f"{live_server.url}/accounts/{quiet}")
    assert "No samples yet — beat records one every 5 minutes" in page.inner_text("#usage-empty")


UNDEFINED = """\
name: refs
account: acme-prod
inputs:
  email: {type: string}
steps:
  - id: contact
    action: salesforce.query
    soql: "DELETE FROM Contact"
  - id: note
    action: set
    vars:
      a: "{{ inputs.emial }}"
      b: "{{ steps.nosuch.id }}"
"""


def test_undefined_references_are_marked_at_their_lines_on_save(
    live_server: Any, admin_page: Any
) -> None:
    runtime = live_server.runtime
    _accounts(runtime, "acme-prod")
    page = admin_page("/behaviors/new")
    page.wait_for_selector(".CodeMirror")
    page.evaluate("text => window.forcebotEditor.setValue(text)", UNDEFINED)
    page.click("button:has-text('Create')")
    page.wait_for_selector(".problem-marker")
    listed = page.inner_text(".flash.error")
    assert "inputs.emial" in listed and "steps.nosuch" in listed and "SELECT" in listed
    marked = dict(
        page.evaluate(
            "() => { const cm = window.forcebotEditor, out = [];"
            " for (let i = 0; i < cm.lineCount(); i++) {"
            "   const info = cm.lineInfo(i);"
            "   if (info.gutterMarkers && info.gutterMarkers['problem-markers'])"
            "     out.push([i + 1, info.gutterMarkers['problem-markers'].title]); }"
            " return out; }"
        )
    )
    assert sorted(marked) == [8, 12, 13], marked
    assert "SELECT" in marked[8] and "emial" in marked[12] and "nosuch" in marked[13]
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Behavior)) == 0


def test_a_too_large_payload_states_the_limit_and_keeps_the_text(
    live_server: Any, admin_page: Any
) -> None:
    from shared.behaviors.store import MAX_PAYLOAD_BYTES

    runtime = live_server.runtime
    with runtime.Session.begin() as session:
        save_behavior(session, "name: big\nsteps:\n  - id: x\n    action: set\n    vars: {a: 1}\n")
    page = admin_page("/behaviors/big")
    big = '{"notes": "' + "x" * (MAX_PAYLOAD_BYTES + 10) + '"}'
    page.evaluate("text => { document.getElementById('payload').value = text; }", big)
    page.click("text=Run now")
    note = page.locator("#payload-too-large")
    note.wait_for(state="visible")
    assert f"the limit is {MAX_PAYLOAD_BYTES // 1024} KB" in note.inner_text()
    assert page.input_value("#payload") == big  # nothing lost
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 0


def test_small_defects_a_new_user_hit(live_server: Any, admin_page: Any) -> None:
    import requests

    from shared.runs import create_run

    runtime = live_server.runtime
    _accounts(runtime, "acme-prod", "stale")
    with runtime.Session.begin() as session:
        stale = session.scalars(select(Account).where(Account.name == "stale")).one()
        stale.status, stale.status_reason = "needs_reauth", "expired access/refresh token"
        save_behavior(session, "name: quick\nsteps:\n  - {id: x, action: set, vars: {a: 1}}\n")
        run, _ = create_run(session, "quick", {}, trigger="manual")
        run.status, run.attempts = "cancelled", 1
        run.error = {"code": "SERVER_UNAVAILABLE", "message": "try later"}
        run_id = run.id

    with runtime.Session.begin() as session:
        second = Service(name="s2", client_id="c2", client_secret_enc=runtime.crypto.encrypt("y"),
                         login_url="https://login2.example")  # fmt: skip
        session.add(second)
        session.flush()
        second_id = second.id

    page = admin_page("/accounts")
    row = page.locator("#accounts-live tr", has_text="stale").inner_text()
    assert "needs re-authorization" in row and "needs_reauth" not in row  # a label, not a code
    # The link form keeps the chosen service and the typed name when linking is refused.
    page.select_option("#service_id", str(second_id))
    page.fill("#account-name", "stale")  # the name of another service's account
    page.click("text=Link to Salesforce")
    page.wait_for_selector("text=Cannot link:")
    assert page.input_value("#service_id") == str(second_id)
    assert page.input_value("#account-name") == "stale"
    # A cancelled run with one attempt does not call its error "from an earlier attempt".
    page.goto(f"{live_server.url}/runs/{run_id}")
    text = page.inner_text("main")
    assert "earlier attempt" not in text and "before it was cancelled" in text
    # A favicon, and /metrics answers a client without credentials with 401, not a login page.
    icon = page.get_attribute("link[rel=icon]", "href")
    assert page.request.get(live_server.url + icon).status == 200
    assert page.request.get(live_server.url + "/favicon.ico").status == 200
    metrics = requests.get(live_server.url + "/metrics", allow_redirects=False, timeout=10)
    assert metrics.status_code == 401
