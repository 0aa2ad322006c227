"""The link flow in a real browser (Debian's Chromium driven by Playwright); skipped without it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from shared.auth import create_admin
from shared.models import Account
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SIM_CLIENT_ID, SIM_CLIENT_SECRET

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no /usr/bin/chromium")


def test_link_in_a_browser(live_server, sim):
    sync_api = pytest.importorskip("playwright.sync_api")
    sim.control.update_app(
        SIM_CLIENT_ID, auto_approve=False, redirect_uris=[live_server.callback_url]
    )
    with live_server.runtime.Session.begin() as session:
        create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD)
    base = live_server.url
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15000)
            page.goto(f"{base}/accounts")
            page.fill("input[name=email]", ADMIN_EMAIL)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/accounts")

            page.goto(f"{base}/services/new")
            page.fill("#name", "sim")
            page.fill("#client_id", SIM_CLIENT_ID)
            page.fill("#client_secret", SIM_CLIENT_SECRET)
            page.fill("#login_url", sim.login_url)
            page.click("text=Create service")
            page.wait_for_selector("text=Created service sim")

            page.fill("#account-name", "acme-prod")
            page.click("text=Link to Salesforce")
            page.wait_for_selector("text=Allow Access?")
            page.click("button[value=allow]")
            page.wait_for_selector("#account-status")
            assert page.url.startswith(f"{base}/accounts/")
            assert page.inner_text("#account-status") == "active"
            info = sim.control.info()
            assert page.inner_text("#account-username") == info["username"]
            assert page.inner_text("#account-org") == info["org_id"]
        finally:
            browser.close()
    with live_server.runtime.Session() as session:
        assert session.scalars(select(Account.status)).one() == "active"
