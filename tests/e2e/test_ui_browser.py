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
    page.wait_for_selector("text=4 created")

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
    page.wait_for_selector("text=4 updated")
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
    # Updated in place: still the page that was loaded, no reload happened.
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loaded
    assert page.evaluate("window.performance.navigation.type") == 0
    with runtime.Session() as session:
        assert session.get(Run, run_id).status == "succeeded"
    screenshot(page, "run-detail")
