import re

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

PUBLIC = {
    "auth.login",
    "oauth.callback",
    "health.healthz",
    "health.readyz",
    "static",
    "pages.favicon",
}


def _csrf(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "Log in to Forcebot" in response.get_data(as_text=True)


def test_login_needs_csrf(client, auth):
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_and_logout(client, auth):
    response = client.post(
        "/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": _csrf(client)},
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": _csrf(client, "/")})
    assert client.get("/").status_code == 302


def test_wrong_password_then_throttled(client, auth):
    for _ in range(5):
        response = client.post(
            "/login",
            data={"email": ADMIN_EMAIL, "password": "wrong-password", "csrf_token": _csrf(client)},
        )
        assert response.status_code == 401
    response = client.post(
        "/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": _csrf(client)},
    )
    assert response.status_code == 429
    assert "too many failed logins" in response.get_data(as_text=True)


def test_open_redirect_after_login_is_refused(client, auth):
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": _csrf(client)},
    )
    assert response.headers["Location"] == "/"


def test_every_route_but_the_public_ones_refuses_anonymous_requests(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", "1")
        url = re.sub(r"<[^>]+:([^>]+)>", "1", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if url.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.get_json()["error"]["code"] == "unauthorized"
            else:
                assert response.status_code in (302, 400, 401), (method, url)
                if response.status_code == 302:
                    assert "/login" in response.headers["Location"], (method, url)
            checked += 1
    assert checked >= 3


def test_static_files_and_favicon_are_served(client):
    assert client.get("/favicon.ico").headers["Location"].endswith("/static/favicon.svg")
    assert client.get("/static/favicon.svg").status_code == 200
    htmx = client.get("/static/vendor/htmx/htmx.min.js")
    assert htmx.status_code == 200 and b"htmx" in htmx.data


def test_openapi_is_served_to_a_logged_in_session(logged_in):
    response = logged_in.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.")


def test_api_rejects_missing_and_wrong_tokens(client, api):
    assert client.get("/api/v1/openapi.json").status_code == 401
    response = client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "the API token is unknown or revoked"
    assert api.get("/openapi.json").status_code == 200


def test_api_unknown_route_uses_the_error_format(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_tokens_are_stored_hashed(runtime, api_token):
    from sqlalchemy import select

    from shared.models import ApiToken

    with runtime.Session() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert api_token not in stored and len(stored) == 1


def test_session_cookie_is_secure_when_the_public_url_is_https(settings, runtime):
    from web import create_app

    app = create_app(settings.with_(public_url="https://bot.example"), runtime)
    client = app.test_client()
    client.application.config.update(TESTING=True)
    from shared.auth import create_admin

    with runtime.Session.begin() as session:
        create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD)
    response = client.post(
        "/login",
        base_url="https://bot.example",
        # Over https Flask-WTF also checks that the Referer is this site.
        headers={"Referer": "https://bot.example/login"},
        data={
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": _csrf_https(client),
        },
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _csrf_https(client):
    page = client.get("/login", base_url="https://bot.example").get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_page_errors_render_in_the_layout(client, logged_in):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "404 · Not Found" in missing.get_data(as_text=True)
    assert "Back to the dashboard" in missing.get_data(as_text=True)


def test_csrf_failure_says_what_to_do(client, auth):
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert "reload the page and try again" in response.get_data(as_text=True)


def test_api_reference_page_renders_the_document(logged_in):
    page = logged_in.client.get("/api-reference").get_data(as_text=True)
    doc = logged_in.client.get("/api/v1/openapi.json").get_json()
    for path, operations in doc["paths"].items():
        for method in operations:
            assert f"{method.upper()}</span> <code>{path}</code>" in page
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_time(
    client, runtime, api_token
):
    import time

    from sqlalchemy import select

    from shared.auth import revoke_api_token
    from shared.models import ApiToken
    from web.auth import TOKEN_CACHE_SECONDS

    headers = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/api/v1/runs", headers=headers).status_code == 200  # cached now
    # Revoked straight in the database, as another web process's admin page would: this
    # process learns it when its cache entry expires.
    with runtime.Session.begin() as session:
        revoke_api_token(session, session.scalars(select(ApiToken.id)).one())
    revoked_at = time.monotonic()
    deadline = revoked_at + TOKEN_CACHE_SECONDS + 2
    status = 200
    while status != 401 and time.monotonic() < deadline:
        status = client.get("/api/v1/runs", headers=headers).status_code
        time.sleep(0.05)
    assert status == 401
    assert time.monotonic() - revoked_at <= TOKEN_CACHE_SECONDS + 1
    assert client.get("/api/v1/runs", headers=headers).status_code == 401  # not cached
