"""Settings page: API tokens (created once, listed with last use, revoked), password, admins."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import Admin, ApiToken
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD


def test_a_token_is_shown_once_used_and_revoked(logged_in, app, runtime):
    client = logged_in.client
    token = logged_in.csrf_token("/admin/")
    page = client.post("/admin/tokens", data={"name": "ci", "csrf_token": token})
    text = page.get_data(as_text=True)
    plaintext = text.split("<pre>", 1)[1].split("</pre>", 1)[0]
    assert len(plaintext) > 30
    with runtime.Session() as session:
        stored = session.scalars(select(ApiToken).where(ApiToken.name == "ci")).one()
        assert stored.token_hash != plaintext and stored.last_used_at is None
    assert plaintext not in client.get("/admin/").get_data(as_text=True)  # once only

    api = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert api.get("/api/v1/behaviors", headers=headers).status_code == 200
    with runtime.Session() as session:
        assert session.get(ApiToken, stored.id).last_used_at is not None
    assert "never" not in client.get("/admin/").get_data(as_text=True)  # its last use is shown

    client.post(f"/admin/tokens/{stored.id}/revoke", data={"csrf_token": token})
    assert api.get("/api/v1/behaviors", headers=headers).status_code == 401
    assert "revoked" in client.get("/admin/").get_data(as_text=True)


def test_bad_token_name_password_and_admin_are_listed(logged_in, runtime):
    client = logged_in.client
    token = logged_in.csrf_token("/admin/")
    bad = client.post("/admin/tokens", data={"name": " ", "csrf_token": token})
    assert bad.status_code == 422 and "name: expected 1 to 100 characters" in bad.get_data(
        as_text=True
    )
    wrong = client.post(
        "/admin/password",
        data={"current_password": "nope", "new_password": "short", "csrf_token": token},
    )
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 422
    assert "current_password: wrong password" in text
    assert "new_password: expected at least 8 characters" in text
    dup = client.post(
        "/admin/admins", data={"email": ADMIN_EMAIL, "password": "long-enough", "csrf_token": token}
    )
    assert dup.status_code == 422 and "already exists" in dup.get_data(as_text=True)
    assert f'value="{ADMIN_EMAIL}"' in dup.get_data(as_text=True)  # kept for fixing


def test_change_password_and_add_admin(logged_in, runtime, client):
    token = logged_in.csrf_token("/admin/")
    changed = client.post(
        "/admin/password",
        data={
            "current_password": ADMIN_PASSWORD,
            "new_password": "a-new-password",
            "csrf_token": token,
        },
    )
    assert changed.status_code == 302
    added = client.post(
        "/admin/admins",
        data={"email": "second@example.com", "password": "second-password", "csrf_token": token},
    )
    assert added.status_code == 302
    from shared.auth import authenticate

    with runtime.Session.begin() as session:
        assert authenticate(session, ADMIN_EMAIL, ADMIN_PASSWORD) is None
        assert authenticate(session, ADMIN_EMAIL, "a-new-password") is not None
        assert authenticate(session, "second@example.com", "second-password") is not None
        assert session.scalar(select(Admin).where(Admin.email == "second@example.com"))
