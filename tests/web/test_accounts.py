"""Accounts through the API and pages; secrets never at rest in plaintext nor in any output."""

from __future__ import annotations

from sqlalchemy import func, select, text, update

from shared.models import Account, Service
from tests.conftest import SIM_CLIENT_SECRET

SPEC_FIELDS = {
    "id", "name", "service_id", "status", "status_reason", "instance_url", "username",
    "organization_id", "token_issued_at", "token_expires_at", "last_refresh_at",
    "refresh_count", "api_usage",
}  # fmt: skip


def secrets_of(runtime, account_id):
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        return [
            runtime.crypto.decrypt(account.access_token_enc),
            runtime.crypto.decrypt(account.refresh_token_enc),
            SIM_CLIENT_SECRET,
        ]


def test_api_lists_and_shows_accounts_without_tokens(api, linked_account, runtime, sim):
    account_id = linked_account()
    listed = api.get("/accounts")
    assert listed.status_code == 200
    (account,) = listed.get_json()["accounts"]
    assert set(account) == SPEC_FIELDS
    assert set(account["api_usage"]) == {"used", "max", "at"}
    assert account["status"] == "active" and account["name"] == "acme-prod"
    shown = api.get(f"/accounts/{account_id}")
    assert shown.get_json() == account
    for secret in secrets_of(runtime, account_id):
        assert secret not in listed.get_data(as_text=True)
        assert secret not in shown.get_data(as_text=True)
    assert api.get("/accounts/999").status_code == 404


def test_link_validation(api, sim, runtime):
    response = api.post("/accounts/link", json={"service_id": 0, "name": "bad name!"})
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert [d.split(":")[0] for d in details] == ["service_id", "name"], details
    # A well-formed id of no service is 404 (the schema cannot know which ids exist).
    response = api.post("/accounts/link", json={"service_id": 42, "name": "acme"})
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "service not found"
    assert api.post("/accounts/link", json={}).status_code == 422


def test_api_delete_revokes_at_salesforce(api, linked_account, runtime, sim):
    account_id = linked_account()
    refresh_token = secrets_of(runtime, account_id)[1]
    response = api.delete(f"/accounts/{account_id}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": True, "revoked": True, "message": None}
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0
    # The refresh token is dead at Salesforce now.
    import requests

    dead = requests.post(
        f"{sim.login_url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token,
              "client_id": "3MVG9forcebot.test.client", "client_secret": SIM_CLIENT_SECRET},
        timeout=10,
    )  # fmt: skip
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_api_refresh_now(api, linked_account, runtime, sim):
    account_id = linked_account()
    before = api.get(f"/accounts/{account_id}").get_json()
    response = api.post(f"/accounts/{account_id}/refresh")
    assert response.status_code == 200, response.get_json()
    after = response.get_json()
    assert after["refresh_count"] == before["refresh_count"] + 1
    assert after["last_refresh_at"] is not None


def test_api_refresh_of_revoked_account_reports_reauth(api, linked_account, sim):
    account_id = linked_account()
    sim.control.revoke_refresh_tokens()
    response = api.post(f"/accounts/{account_id}/refresh")
    assert response.status_code == 409
    assert api.get(f"/accounts/{account_id}").get_json()["status"] == "needs_reauth"


def test_pages_list_detail_and_needs_reauth(logged_in, linked_account, runtime, sim):
    client = logged_in.client
    assert "No accounts linked yet" in client.get("/accounts").get_data(as_text=True)
    account_id = linked_account()
    listing = client.get("/accounts").get_data(as_text=True)
    assert "acme-prod" in listing
    with runtime.Session.begin() as session:
        session.execute(
            update(Account).values(
                status="needs_reauth", status_reason="expired access/refresh token"
            )
        )
    page = client.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert 'id="needs-reauth"' in page and "expired access/refresh token" in page
    assert "Relink" in page and "Refresh now" in page and "Unlink" in page
    info = sim.control.info()
    assert info["username"] in page and info["org_id"] in page

    relink = client.post(
        f"/accounts/{account_id}/relink",
        data={"csrf_token": logged_in.csrf_token(f"/accounts/{account_id}")},
    )
    assert relink.status_code == 303
    assert relink.headers["Location"].startswith(sim.login_url + "/services/oauth2/authorize?")


def test_link_form_keeps_what_was_chosen_and_typed(logged_in, linked_account, runtime, sim):
    linked_account(name="acme-prod")
    linked_account(name="acme-sandbox", service_name="sim-2")
    with runtime.Session() as session:
        second = session.query(Service).filter_by(name="sim-2").one().id
    client = logged_in.client
    response = client.post(
        "/accounts/link",
        data={
            "service_id": str(second),
            "name": "acme-prod",  # taken
            "csrf_token": logged_in.csrf_token("/accounts"),
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Cannot link:" in page
    assert f'<option value="{second}" selected>' in page
    assert 'value="acme-prod"' in page
    # Labels, not raw status words; the token's expiry as a countdown.
    listing = client.get("/accounts").get_data(as_text=True)
    assert "expires in 1h 59m" in listing or "expires in 2h" in listing
    with runtime.Session.begin() as session:
        session.execute(update(Account).values(status="needs_reauth"))
    assert ">needs re-authorization<" in client.get("/accounts").get_data(as_text=True)


def test_page_refresh_and_unlink(logged_in, linked_account, runtime, sim):
    client = logged_in.client
    account_id = linked_account()
    token = logged_in.csrf_token(f"/accounts/{account_id}")
    response = client.post(f"/accounts/{account_id}/refresh", data={"csrf_token": token})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Refreshed the access token of acme-prod" in page
    with runtime.Session() as session:
        assert session.get(Account, account_id).refresh_count == 1

    response = client.post(f"/accounts/{account_id}/test", data={"csrf_token": token})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "acme-prod is connected" in page and "daily API requests left" in page

    response = client.post(f"/accounts/{account_id}/unlink", data={"csrf_token": token})
    assert response.status_code == 302
    assert "revoked at Salesforce and deleted" in client.get("/accounts").get_data(as_text=True)
    with runtime.Session() as session:
        assert session.get(Account, account_id) is None


def test_no_secret_in_plaintext_in_the_database(linked_account, runtime, settings, sim):
    account_id = linked_account()
    secrets = secrets_of(runtime, account_id)
    dump: list[str] = []
    with runtime.engine.connect() as conn:
        for table in ("services", "accounts", "oauth_states"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                dump.extend(str(value) for value in row)
    if settings.is_sqlite:
        # Also the raw bytes of the database file and its write-ahead log.
        path = settings.database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as fh:
                    dump.append(fh.read().decode("latin-1"))
            except FileNotFoundError:
                pass
    everything = "\n".join(dump)
    assert len(everything) > 1000
    for secret in secrets:
        assert secret not in everything


def test_no_secret_in_any_page_or_api_output(logged_in, api, linked_account, runtime, sim):
    account_id = linked_account()
    with runtime.Session() as session:
        service_id = session.scalars(select(Service.id)).one()
    secrets = secrets_of(runtime, account_id)
    outputs = [
        logged_in.client.get(path).get_data(as_text=True)
        for path in (
            "/",
            "/services",
            f"/services/{service_id}",
            f"/services/{service_id}/edit",
            "/accounts",
            f"/accounts/{account_id}",
        )
    ]
    outputs += [
        api.get(path).get_data(as_text=True)
        for path in (
            "/services",
            f"/services/{service_id}",
            "/accounts",
            f"/accounts/{account_id}",
            "/openapi.json",
        )
    ]
    assert all(len(output) > 100 for output in outputs)
    for output in outputs:
        for secret in secrets:
            assert secret not in output


def _sample_history(runtime, account_id, hours):
    """Samples an hour apart over the last `hours`, usage growing by 100 an hour."""
    from datetime import timedelta

    from shared import usage
    from shared.models import utcnow

    now = utcnow()
    for n in range(hours, -1, -1):
        with runtime.Session.begin() as session:
            account = session.get(Account, account_id)
            account.api_usage_used, account.api_usage_max = 1000 + 100 * (hours - n), 15000
            usage.record_samples(session, now - timedelta(hours=n))


def test_api_usage_history_and_its_bad_input(api, linked_account, runtime, sim):
    account_id = linked_account()
    empty = api.get(f"/accounts/{account_id}/usage").get_json()
    assert empty["samples"] == [] and empty["every_seconds"] == 300
    _sample_history(runtime, account_id, 30)
    answer = api.get(f"/accounts/{account_id}/usage").get_json()
    used = [s["used"] for s in answer["samples"]]
    assert len(used) in (24, 25) and used == sorted(used) and used[-1] == 4000  # oldest first
    assert {s["max"] for s in answer["samples"]} == {15000}
    assert len(api.get(f"/accounts/{account_id}/usage?hours=2").get_json()["samples"]) in (2, 3)
    bad = api.get(f"/accounts/{account_id}/usage?hours=49")
    assert bad.status_code == 422 and "hours" in str(bad.get_json()["error"]["details"])
    assert api.get("/accounts/999/usage").status_code == 404
    assert "/accounts/{account_id}/usage" in api.get("/openapi.json").get_json()["paths"]
