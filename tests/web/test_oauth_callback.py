"""GET /oauth/callback against the simulator: success, relink, and every refusal saves nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shared.models import Account, OAuthState, utcnow
from tests.conftest import SIM_CLIENT_ID
from tests.web.linkflow import consent, path_and_query, query, service_body


@pytest.fixture
def service_id(api, sim):
    response = api.post("/services", json=service_body(sim))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def start(api, service_id, name="acme-prod"):
    response = api.post("/accounts/link", json={"service_id": service_id, "name": name})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["authorize_url"]


def count_accounts(runtime):
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(Account))


def states(runtime):
    with runtime.Session() as session:
        return session.scalars(select(OAuthState)).all()


def test_api_started_link_completes_at_the_callback(client, api, sim, service_id, settings):
    url = start(api, service_id)
    params = query(url)
    assert params["response_type"] == "code"
    assert params["client_id"] == SIM_CLIENT_ID
    assert params["redirect_uri"] == settings.oauth_callback_url
    assert params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) >= 43
    assert params["scope"] == "api refresh_token offline_access"
    assert len(params["state"]) >= 22  # 128 bits of URL-safe base64

    response = client.get(path_and_query(consent(url)))
    assert response.status_code == 200
    info = sim.control.info()
    page = response.get_data(as_text=True)
    assert "Linked" in page and info["username"] in page

    account = api.get("/accounts").get_json()["accounts"][0]
    assert account["status"] == "active"
    assert account["username"] == info["username"]
    assert account["organization_id"] == info["org_id"]
    assert account["instance_url"] == sim.instance_url
    assert account["token_expires_at"] > account["token_issued_at"]
    assert set(account) == {
        "id", "name", "service_id", "status", "status_reason", "instance_url", "username",
        "organization_id", "token_issued_at", "token_expires_at", "last_refresh_at",
        "refresh_count", "api_usage",
    }  # fmt: skip


def test_relinking_the_same_user_updates_the_account(client, api, sim, service_id, runtime):
    client.get(path_and_query(consent(start(api, service_id))))
    with runtime.Session() as session:
        first = session.scalars(select(Account)).one()
        version = first.token_version
        session.execute(
            update(Account).values(status="needs_reauth", status_reason="expired access/refresh")
        )
        session.commit()
    # Even under another name: the same Salesforce user and org is the same account.
    response = client.get(path_and_query(consent(start(api, service_id, name="other"))))
    assert response.status_code == 200
    assert "Relinked" in response.get_data(as_text=True)
    with runtime.Session() as session:
        again = session.scalars(select(Account)).one()
    assert again.id == first.id and again.name == "acme-prod"
    assert again.status == "active" and again.status_reason is None
    assert again.token_version == version + 1


def test_forged_state_is_refused(client, api, sim, service_id, runtime):
    response = client.get("/oauth/callback?code=abc&state=forged-state-value")
    assert response.status_code == 400
    assert "unknown to Forcebot" in response.get_data(as_text=True)
    assert count_accounts(runtime) == 0


def test_missing_state_is_refused(client, runtime, sim):
    response = client.get("/oauth/callback?code=abc")
    assert response.status_code == 400
    assert "no state parameter" in response.get_data(as_text=True)
    assert count_accounts(runtime) == 0


def test_expired_state_is_refused(client, api, sim, service_id, runtime):
    target = consent(start(api, service_id))
    with runtime.Session.begin() as session:
        session.execute(update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = client.get(path_and_query(target))
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert count_accounts(runtime) == 0
    assert all(state.used_at is not None for state in states(runtime))
    # Nothing was exchanged: the code was never sent to Salesforce.
    assert sim.control.counters().get("code_grants", 0) == 0


def test_reused_state_is_refused_and_changes_nothing(client, api, sim, service_id, runtime):
    target = consent(start(api, service_id))
    assert client.get(path_and_query(target)).status_code == 200
    with runtime.Session() as session:
        before = session.scalars(select(Account)).one()
    response = client.get(path_and_query(target))
    assert response.status_code == 400
    assert "already used" in response.get_data(as_text=True)
    with runtime.Session() as session:
        after = session.scalars(select(Account)).one()
    assert after.token_version == before.token_version
    assert after.access_token_enc == before.access_token_enc


def test_deny_at_consent_is_explained(client, api, sim, service_id, runtime, settings):
    sim.control.update_app(SIM_CLIENT_ID, auto_approve=False)
    target = consent(start(api, service_id), decision="deny")
    assert query(target)["error"] == "access_denied"
    response = client.get(path_and_query(target))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Access was denied" in page and "choose Allow" in page
    assert count_accounts(runtime) == 0
    assert [state.used_at is not None for state in states(runtime)] == [True]


def test_wrong_client_secret_is_explained(client, api, sim, runtime):
    created = api.post("/services", json=service_body(sim, client_secret="not-the-secret"))
    target = consent(start(api, created.get_json()["id"]))
    response = client.get(path_and_query(target))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "did not accept the service&#39;s consumer key and secret" in page
    assert "invalid_client" in page and "Salesforce Setup" in page
    assert count_accounts(runtime) == 0
    assert "not-the-secret" not in page


def test_pkce_verifier_mismatch_is_refused(client, api, sim, service_id, runtime):
    target = consent(start(api, service_id))
    with runtime.Session.begin() as session:
        session.execute(
            update(OAuthState).values(code_verifier_enc=runtime.crypto.encrypt("x" * 43))
        )
    response = client.get(path_and_query(target))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "PKCE verifier did not match" in page and "invalid code verifier" in page
    assert count_accounts(runtime) == 0
    assert sim.control.counters()["rejected_codes"] == 1


def test_salesforce_error_without_a_known_state_is_still_explained(client, runtime, sim):
    response = client.get(
        "/oauth/callback?error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match"
    )
    assert response.status_code == 400
    assert "callback URL" in response.get_data(as_text=True)
    assert count_accounts(runtime) == 0


def test_page_started_link_is_bound_to_the_browser(app, logged_in, api, sim, service_id, runtime):
    client = logged_in.client
    response = client.post(
        "/accounts/link",
        data={"service_id": service_id, "name": "acme-prod", "csrf_token": logged_in.csrf_token()},
    )
    assert response.status_code == 303
    target = consent(response.headers["Location"])

    # Another browser (no session) cannot finish it, and the state is burnt.
    stranger = app.test_client()
    refused = stranger.get(path_and_query(target))
    assert refused.status_code == 400
    assert "another browser" in refused.get_data(as_text=True)
    assert count_accounts(runtime) == 0

    response = client.post(
        "/accounts/link",
        data={"service_id": service_id, "name": "acme-prod", "csrf_token": logged_in.csrf_token()},
    )
    response = client.get(path_and_query(consent(response.headers["Location"])))
    assert response.status_code == 302
    with runtime.Session() as session:
        account = session.scalars(select(Account)).one()
    assert response.headers["Location"].endswith(f"/accounts/{account.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Linked acme-prod" in page and account.username in page
