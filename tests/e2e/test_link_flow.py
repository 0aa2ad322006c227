"""The whole setup story over real HTTP: log in, create a service, link through the
simulator's consent page, land back on the account page with the account active."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from shared.auth import create_admin
from shared.models import Account
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SIM_CLIENT_ID, SIM_CLIENT_SECRET


def csrf(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def test_link_flow_over_http(live_server, sim):
    sim.control.update_app(
        SIM_CLIENT_ID, auto_approve=False, redirect_uris=[live_server.callback_url]
    )
    with live_server.runtime.Session.begin() as session:
        create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD)
    browser = requests.Session()
    base = live_server.url

    # Anonymous: sent to the login page.
    response = browser.get(f"{base}/services", timeout=10)
    assert response.url.startswith(f"{base}/login")
    response = browser.post(
        f"{base}/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf(response.text)},
        timeout=10,
    )
    assert response.status_code == 200 and "Dashboard" in response.text

    # Create the service through the page form.
    form = browser.get(f"{base}/services/new", timeout=10).text
    assert live_server.callback_url in form
    response = browser.post(
        f"{base}/services/new",
        data={
            "csrf_token": csrf(form),
            "name": "sim",
            "client_id": SIM_CLIENT_ID,
            "client_secret": SIM_CLIENT_SECRET,
            "login_url": sim.login_url,
            "api_version": "62.0",
            "scopes": "api refresh_token offline_access",
            "session_timeout_minutes": "120",
            "api_reserve_percent": "10",
        },
        timeout=10,
    )
    assert response.status_code == 200 and "Created service sim" in response.text
    service_page = response.url

    # "Link to Salesforce": the browser follows the redirect to the consent page.
    response = browser.post(
        f"{base}/accounts/link",
        data={
            "csrf_token": csrf(response.text),
            "service_id": service_page.rsplit("/", 1)[1],
            "name": "acme-prod",
        },
        timeout=10,
    )
    assert response.url.startswith(f"{sim.login_url}/services/oauth2/authorize?")
    assert "Allow Access?" in response.text and "Forcebot Tests" in response.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', response.text).group(1)

    # Allow: the simulator redirects to our callback, which redirects to the account page.
    response = browser.post(
        f"{sim.login_url}/services/oauth2/authorize",
        data={"request_id": request_id, "decision": "allow"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:500]
    assert [r.url.split("?")[0] for r in response.history][-1] == live_server.callback_url
    assert re.fullmatch(rf"{base}/accounts/\d+", response.url)
    info = sim.control.info()
    assert "Linked acme-prod as " + info["username"] in response.text
    assert re.search(r'id="account-status">active<', response.text)
    assert info["org_id"] in response.text

    with live_server.runtime.Session() as session:
        account = session.scalars(select(Account)).one()
    assert account.status == "active"
    assert account.username == info["username"]
    assert account.organization_id == info["org_id"]
    assert account.instance_url == sim.instance_url

    # Replaying the callback URL (same code and state) is refused and changes nothing.
    callback = response.history[-1].url
    replay = browser.get(callback, timeout=10)
    assert replay.status_code == 400 and "already used" in replay.text
