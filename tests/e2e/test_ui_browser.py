"""Issue 13's views in a real browser (Debian's Chromium through Playwright; skipped without
it): each test drives one defect fix or new view the way a user would.

Set FORCEBOT_SCREENSHOTS=DIR to keep screenshots of the views (docs/screenshots/ holds the
ones the README shows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from shared.behaviors.store import get_version
from shared.models import Account, Behavior, Service
from tests.conftest import ROOT

PACKAGE = Path(ROOT) / "packages" / "salesforce-bot.yaml"


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
