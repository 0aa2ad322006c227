"""The link flow in a real browser (Debian's Chromium driven by Playwright); skipped without it."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import Account
from tests.conftest import SIM_CLIENT_ID, SIM_CLIENT_SECRET


def test_link_in_a_browser(live_server, sim, admin_page):
    sim.control.update_app(
        SIM_CLIENT_ID, auto_approve=False, redirect_uris=[live_server.callback_url]
    )
    base = live_server.url
    page = admin_page("/accounts")

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
    # The service asks for "api refresh_token offline_access": two permission lines, each once.
    lines = page.locator("#scopes li").all_inner_texts()
    assert len(lines) == len(set(lines)) == 2, lines
    page.click("button[value=allow]")
    page.wait_for_selector("#account-status")
    assert page.url.startswith(f"{base}/accounts/")
    assert page.inner_text("#account-status") == "active"
    info = sim.control.info()
    assert page.inner_text("#account-username") == info["username"]
    assert page.inner_text("#account-org") == info["org_id"]
    with live_server.runtime.Session() as session:
        assert session.scalars(select(Account.status)).one() == "active"
