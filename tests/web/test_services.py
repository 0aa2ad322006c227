"""Services through the API and the pages: validation, write-only secret, delete with revoke."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from shared.models import Account, Service
from tests.conftest import SIM_CLIENT_SECRET
from tests.web.linkflow import service_body


def test_create_with_defaults_and_secret_never_returned(api, sim, runtime):
    response = api.post("/services", json=service_body(sim))
    assert response.status_code == 201
    body = response.get_json()
    assert body["provider"] == "salesforce"
    assert body["api_version"] == "62.0"
    assert body["scopes"] == "api refresh_token offline_access"
    assert body["session_timeout_minutes"] == 120
    assert body["use_introspection"] is False
    assert body["api_reserve_percent"] == 10
    assert "client_secret" not in body and SIM_CLIENT_SECRET not in response.get_data(as_text=True)
    with runtime.Session() as session:
        stored = session.get(Service, body["id"])
        assert runtime.crypto.decrypt(stored.client_secret_enc) == SIM_CLIENT_SECRET
    listed = api.get("/services").get_data(as_text=True)
    assert SIM_CLIENT_SECRET not in listed and body["name"] in listed


def test_validation_lists_every_problem_and_saves_nothing(api, runtime):
    response = api.post(
        "/services",
        json={
            "name": "",
            "client_secret": "s",
            "login_url": "http://login.salesforce.com",
            "api_version": "62",
            "scopes": "api",
            "session_timeout_minutes": 5,
            "use_introspection": "maybe",
            "api_reserve_percent": 101,
            "colour": "blue",
        },
    )
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    fields = sorted(problem.split(":")[0] for problem in error["details"])
    assert fields == [
        "api_reserve_percent", "api_version", "client_id", "colour", "login_url", "name",
        "scopes", "session_timeout_minutes", "use_introspection",
    ]  # fmt: skip
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Service)) == 0


def test_login_url_rules(api):
    def problems(url):
        response = api.post("/services", json={"name": "x", "client_id": "c",
                                               "client_secret": "s", "login_url": url})  # fmt: skip
        return response.status_code, response.get_json()

    for good in (
        "https://login.salesforce.com",
        "https://test.salesforce.com/",
        "https://acme.my.salesforce.com",
        "http://127.0.0.1:18443",
        "http://localhost:1234",
        "http://[::1]:8080",
    ):
        status, body = problems(good)
        assert status == 201, (good, body)
        api.delete(f"/services/{body['id']}")
    for bad in (
        "http://login.salesforce.com",
        "http://evil.example",
        "ftp://login.salesforce.com",
        "https://login.salesforce.com/services/oauth2",
        "https://user:pw@login.salesforce.com",
        "login.salesforce.com",
    ):
        status, body = problems(bad)
        assert status == 422, bad
        assert any(p.startswith("login_url:") for p in body["error"]["details"]), bad


def test_duplicate_name_and_patch(api, sim, runtime):
    first = api.post("/services", json=service_body(sim)).get_json()
    again = api.post("/services", json=service_body(sim, name="SIM"))
    # A clash is 409 (the request fits the schema; the names taken are state), not 422.
    assert again.status_code == 409
    assert again.get_json()["error"]["message"] == "name: a service named 'SIM' already exists"

    response = api.patch(
        f"/services/{first['id']}",
        json={"api_version": "61.0", "client_secret": "", "session_timeout_minutes": 30},
    )
    assert response.status_code == 200
    assert response.get_json()["api_version"] == "61.0"
    with runtime.Session() as session:
        stored = session.get(Service, first["id"])
        assert runtime.crypto.decrypt(stored.client_secret_enc) == SIM_CLIENT_SECRET
        assert stored.session_timeout_minutes == 30

    bad = api.patch(f"/services/{first['id']}", json={"session_timeout_minutes": 2000})
    assert bad.status_code == 422
    assert api.get(f"/services/{first['id']}").get_json()["session_timeout_minutes"] == 30
    assert api.patch("/services/999", json={}).status_code == 404
    assert api.post("/services", data="nope").status_code == 400


def test_api_delete_with_accounts_needs_confirmation_and_revokes(api, linked_account, runtime, sim):
    linked_account()
    with runtime.Session() as session:
        service_id = session.scalars(select(Service.id)).one()
    refused = api.delete(f"/services/{service_id}")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["details"] == {"accounts": ["acme-prod"]}

    response = api.delete(f"/services/{service_id}?confirm=true")
    assert response.status_code == 200
    assert response.get_json()["accounts"] == [
        {"name": "acme-prod", "revoked": True, "message": None}
    ]
    assert any(e["path"] == "/services/oauth2/revoke" for e in sim.control.log())
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0
        assert session.scalar(select(func.count()).select_from(Service)) == 0


def _csrf(page):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_pages_create_edit_and_delete(logged_in, sim, runtime):
    client = logged_in.client
    empty = client.get("/services").get_data(as_text=True)
    assert "No services yet" in empty

    form = client.get("/services/new").get_data(as_text=True)
    bad = client.post(
        "/services/new",
        data={"csrf_token": _csrf(form), "name": "", "client_id": "", "client_secret": "",
              "login_url": "http://example.com"},
    )  # fmt: skip
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Nothing was saved" in text and "<b>Login URL</b>: must use https" in text

    response = client.post(
        "/services/new",
        data={"csrf_token": _csrf(form), "name": "sim", "client_id": "key",
              "client_secret": SIM_CLIENT_SECRET, "login_url": sim.login_url,
              "api_version": "62.0", "scopes": "api refresh_token",
              "session_timeout_minutes": "60", "api_reserve_percent": "5",
              "use_introspection": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Created service sim" in detail and SIM_CLIENT_SECRET not in detail
    with runtime.Session() as session:
        service = session.scalars(select(Service)).one()
    assert service.use_introspection is True and service.session_timeout_minutes == 60

    edit = client.get(f"/services/{service.id}/edit").get_data(as_text=True)
    assert SIM_CLIENT_SECRET not in edit
    response = client.post(
        f"/services/{service.id}/edit",
        data={"csrf_token": _csrf(edit), "name": "sim2", "client_id": "key", "client_secret": "",
              "login_url": sim.login_url, "api_version": "62.0", "scopes": "api refresh_token",
              "session_timeout_minutes": "60", "api_reserve_percent": "5"},
    )  # fmt: skip
    assert response.status_code == 302
    with runtime.Session() as session:
        service = session.get(Service, service.id)
        assert service.name == "sim2" and service.use_introspection is False
        assert runtime.crypto.decrypt(service.client_secret_enc) == SIM_CLIENT_SECRET

    response = client.post(f"/services/{service.id}/delete", data={"csrf_token": _csrf(edit)})
    assert response.status_code == 302
    assert "Deleted service sim2" in client.get("/services").get_data(as_text=True)


def test_page_delete_with_accounts_asks_first(logged_in, linked_account, runtime, sim):
    linked_account()
    client = logged_in.client
    with runtime.Session() as session:
        service_id = session.scalars(select(Service.id)).one()
    token = logged_in.csrf_token(f"/services/{service_id}")
    ask = client.post(f"/services/{service_id}/delete", data={"csrf_token": token})
    assert ask.status_code == 200
    assert "Revoke and delete" in ask.get_data(as_text=True)
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 1
    done = client.post(
        f"/services/{service_id}/delete", data={"csrf_token": token, "confirm": "yes"}
    )
    assert done.status_code == 302
    page = client.get("/services").get_data(as_text=True)
    assert "revoked 1 of 1 accounts" in page
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_page_problems_name_the_fields_as_the_form_labels_them(logged_in):
    token = logged_in.csrf_token("/services/new")
    response = logged_in.client.post("/services/new", data={"name": "x", "csrf_token": token})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<li><b>Consumer key (client id)</b>:" in page
    assert "<li>client_id:" not in page
