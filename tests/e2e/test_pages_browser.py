"""Every admin page in a real browser, with real data: renders, shows no secret, links nowhere dead.

Debian's Chromium driven by Playwright (the `admin_page` fixture); skipped without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from sqlalchemy import select

from shared.behaviors.packages import import_package
from shared.behaviors.store import save_behavior
from shared.models import Account, Run, Schedule, Service, Sync
from tests.conftest import ROOT, SIM_CLIENT_SECRET, poll

PACKAGE = Path(ROOT) / "packages" / "salesforce-bot.yaml"
BAD_SOQL = """\
name: bad-soql
description: A query with a typo in a field name
account: acme-prod
steps:
  - id: q
    action: salesforce.query
    soql: "SELECT Id, Nmae FROM Contact"
"""
REAUTH_REASON = "expired access/refresh token"


def _secrets(runtime: Any) -> list[str]:
    """The client secret and every access and refresh token, decrypted from the database."""
    found = []
    with runtime.Session() as session:
        for service in session.scalars(select(Service)):
            found.append(runtime.crypto.decrypt(service.client_secret_enc))
        for account in session.scalars(select(Account)):
            for value in (account.access_token_enc, account.refresh_token_enc):
                if value:
                    found.append(runtime.crypto.decrypt(value))
    assert SIM_CLIENT_SECRET in found and len(found) >= 5, "expected 1 secret and 4 tokens"
    return found


def _run_status(runtime: Any, run_id: int) -> str:
    with runtime.Session() as session:
        run = session.get(Run, run_id)
        return run.status if run else ""


def test_every_page_renders_without_secrets_or_dead_links(
    live_server, sim, linked_account, worker, admin_page
):
    runtime = live_server.runtime
    account_id = linked_account(name="acme-prod")
    stale_id = linked_account(name="acme-stale", service_name="sim-sandbox")
    sim.control.create_record(
        "Contact", {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@acme.example"}
    )
    with runtime.Session.begin() as session:
        import_package(session, PACKAGE.read_text(), account="acme-prod")
        save_behavior(session, BAD_SOQL)
        stale = session.get(Account, stale_id)
        stale.status, stale.status_reason = "needs_reauth", REAUTH_REASON
    with runtime.Session() as session:
        service_id = session.scalars(select(Service.id).where(Service.name == "sim")).one()
        schedule_id = session.scalars(select(Schedule.id)).one()  # the package's schedule
        sync_id = session.scalars(select(Sync.id)).one()  # the package's sync
    secrets = _secrets(runtime)
    base = live_server.url

    page = admin_page("/")

    def run_from_page(behavior: str, payload: str, until: set[str]) -> int:
        page.goto(f"{base}/behaviors/{behavior}")
        page.fill("#payload", payload)
        page.click("text=Run now")
        page.wait_for_url(re.compile(r".*/runs/\d+$"))
        run_id = int(page.url.rsplit("/", 1)[1])
        poll(
            lambda: _run_status(runtime, run_id) in until,
            timeout=30,
            message=f"run {run_id} of {behavior} to reach {until}",
        )
        return run_id

    succeeded = run_from_page(
        "find-contact-by-email", '{"email": "ada@acme.example"}', {"succeeded"}
    )
    failed = run_from_page("bad-soql", "{}", {"failed"})
    # The daily allocation is spent: the run waits (with the time it resumes).
    sim.control.set_limits(max=15000, usage=15000)
    sim.control.add_fault(
        "/services/data/",
        count=100,
        status=403,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message="TotalRequests Limit exceeded.",
    )
    waiting = run_from_page("find-contact-by-email", '{"email": "grace@acme.example"}', {"waiting"})

    pages = {
        "/": "Dashboard",
        "/services": "Connected services",
        f"/services/{service_id}": "Service sim",
        "/services/new": "New service",
        f"/services/{service_id}/edit": "Edit service sim",
        "/accounts": "Connected accounts",
        f"/accounts/{account_id}": "Account acme-prod",
        f"/accounts/{stale_id}": "Account acme-stale",
        "/behaviors/": "Behaviors",
        "/behaviors/new": "New behavior",
        "/behaviors/import": "Import a package",
        "/behaviors/find-contact-by-email": "find-contact-by-email",
        "/behaviors/bad-soql": "bad-soql",
        "/schedules": "Schedules",
        "/schedules/new": "New schedule",
        f"/schedules/{schedule_id}/edit": "Edit schedule hourly-api-limits",
        # The package and the delete dialog point to the syncs pages: they must exist.
        "/syncs/": "Syncs",
        f"/syncs/{sync_id}": "Sync contacts",
        "/records/": "Records",
        "/webhooks": "Webhooks",
        "/workers/": "Workers and queues",
        "/admin/": "Settings",
        "/api-reference": "Forcebot API",
        "/runs/": "Runs",
        "/runs/?status=failed": "Runs",
        f"/runs/{succeeded}": f"Run {succeeded}",
        f"/runs/{failed}": f"Run {failed}",
        f"/runs/{waiting}": f"Run {waiting}",
    }
    links: set[str] = set()
    texts: dict[str, str] = {}
    for path, heading in pages.items():
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        assert heading in page.inner_text("h1"), (path, page.inner_text("h1"))
        html = page.content()
        for secret in secrets:
            assert secret not in html, f"a secret appears on {path}"
        # Every POST form carries a CSRF token.
        missing = page.eval_on_selector_all(
            "form[method=post]",
            "forms => forms.filter(f => !f.querySelector('input[name=csrf_token]'))"
            ".map(f => f.action)",
        )
        assert missing == [], (path, missing)
        texts[path] = page.inner_text("main")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            url = urljoin(base + path, href)
            if urlsplit(url).netloc == urlsplit(base).netloc:
                links.add(url.split("#", 1)[0])

    # What a person needs at 3 a.m. is on the page, not only in the database.
    assert REAUTH_REASON in texts[f"/accounts/{stale_id}"]
    assert REAUTH_REASON in texts["/accounts"] and REAUTH_REASON in texts["/"]
    assert "INVALID_FIELD" in texts[f"/runs/{failed}"]
    assert "No such column" in texts[f"/runs/{failed}"]
    assert "resumes at" in texts[f"/runs/{waiting}"]
    assert "TotalRequests" in texts[f"/runs/{waiting}"]
    assert "Ada" in texts[f"/runs/{succeeded}"]  # the result

    assert len(links) > 20, links
    dead = {}
    for url in sorted(links):
        status = page.request.get(url, max_redirects=0).status
        if status >= 400:
            dead[url] = status
    assert dead == {}, dead
