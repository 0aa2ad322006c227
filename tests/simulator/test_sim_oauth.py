"""The login host: consent page, PKCE, codes, token responses, errors, rotation, revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs, urlsplit

import requests
from simhelpers import (
    API,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    consent_request_id,
    pkce_pair,
)


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_consent_page_shows_org_app_scopes_and_buttons(oauth, control):
    control.update_app(CLIENT_ID, auto_approve=False, name="Forcebot Test App")
    _, challenge = pkce_pair()
    resp = oauth.authorize(**oauth.authorize_params(challenge, scope="api refresh_token"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    html = resp.text
    assert "Acme Simulated Org" in html
    assert "Forcebot Test App" in html
    assert 'data-scope="api"' in html and 'data-scope="refresh_token"' in html
    assert "<button type=submit name=decision value=allow>Allow</button>" in html
    assert "<button type=submit name=decision value=deny>Deny</button>" in html
    assert 'method="post"' in html


def test_consent_page_lists_each_permission_once(oauth, control):
    # refresh_token and offline_access are one permission on Salesforce's screen.
    control.update_app(CLIENT_ID, auto_approve=False)
    _, challenge = pkce_pair()
    params = oauth.authorize_params(challenge, scope="api refresh_token offline_access")
    html = oauth.authorize(**params).text
    items = re.findall(r'<li data-scope="([^"]*)">([^<]*)</li>', html)
    assert [names for names, _ in items] == ["api", "refresh_token offline_access"]
    lines = [line for _, line in items]
    assert len(lines) == len(set(lines)) == 2, lines


def test_allow_redirects_with_code_and_state(oauth, control):
    control.update_app(CLIENT_ID, auto_approve=False)
    verifier, challenge = pkce_pair()
    params = oauth.authorize_params(challenge, state="abc 123/+=")
    page = oauth.authorize(**params)
    resp = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/authorize",
        data={"request_id": consent_request_id(page.text), "decision": "allow"},
        allow_redirects=False,
    )
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = _query(location)
    assert query["state"] == "abc 123/+="
    assert oauth.exchange(query["code"], verifier).status_code == 200
    # the consent request is single use
    again = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/authorize",
        data={"request_id": consent_request_id(page.text), "decision": "allow"},
        allow_redirects=False,
    )
    assert again.status_code == 400


def test_deny_redirects_with_access_denied(oauth, control):
    control.update_app(CLIENT_ID, auto_approve=False)
    _, challenge = pkce_pair()
    page = oauth.authorize(**oauth.authorize_params(challenge, state="s1"))
    resp = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/authorize",
        data={"request_id": consent_request_id(page.text), "decision": "deny"},
        allow_redirects=False,
    )
    assert resp.status_code == 302
    query = _query(resp.headers["Location"])
    assert query == {
        "error": "access_denied",
        "error_description": "end-user denied authorization",
        "state": "s1",
    }
    assert "code" not in query


def test_code_is_urlencoded_in_redirect(oauth):
    verifier, challenge = pkce_pair()
    resp = oauth.authorize(**oauth.authorize_params(challenge))
    raw_query = urlsplit(resp.headers["Location"]).query
    assert "%3D%3D" in raw_query  # codes end in "==" and must be URL-decoded by the client
    code = _query(resp.headers["Location"])["code"]
    assert code.endswith("==")


def test_authorize_rejects_unknown_client_and_bad_redirect(oauth):
    _, challenge = pkce_pair()
    resp = oauth.authorize(**oauth.authorize_params(challenge, client_id="nope"))
    assert resp.status_code == 400
    assert "invalid_client_id" in resp.text and "Location" not in resp.headers
    resp = oauth.authorize(
        **oauth.authorize_params(challenge, redirect_uri=REDIRECT_URI + "/extra")
    )
    assert resp.status_code == 400 and "redirect_uri_mismatch" in resp.text


def test_authorize_requires_code_response_type_and_pkce(oauth):
    _, challenge = pkce_pair()
    resp = oauth.authorize(**oauth.authorize_params(challenge, response_type="token"))
    assert resp.status_code == 302
    assert _query(resp.headers["Location"])["error"] == "unsupported_response_type"
    resp = oauth.authorize(**oauth.authorize_params(None))
    assert _query(resp.headers["Location"])["error"] == "invalid_request"
    resp = oauth.authorize(**oauth.authorize_params(challenge, code_challenge_method="plain"))
    assert _query(resp.headers["Location"])["error"] == "invalid_request"


def test_token_response_shape(oauth, sim):
    before = int(time.time() * 1000)
    body = oauth.login(scope="api refresh_token")
    after = int(time.time() * 1000)
    assert set(body) == {
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert "expires_in" not in body
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sim.instance_url
    info = sim.control.info()
    assert body["id"] == f"{sim.login_url}/id/{info['org_id']}/{info['user_id']}"
    assert isinstance(body["issued_at"], str) and before - 5 <= int(body["issued_at"]) <= after + 5
    assert body["scope"] == "api refresh_token"
    expected = base64.b64encode(
        hmac.new(
            CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert body["signature"] == expected


def test_refresh_token_only_with_refresh_scope(oauth):
    assert "refresh_token" not in oauth.login(scope="api")
    assert "refresh_token" in oauth.login(scope="api offline_access")
    assert "refresh_token" in oauth.login(scope="api refresh_token")


def test_code_is_single_use(oauth):
    code, verifier = oauth.get_code()
    assert oauth.exchange(code, verifier).status_code == 200
    again = oauth.exchange(code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_expires_after_lifetime(oauth, control):
    code, verifier = oauth.get_code()
    control.advance_clock(15 * 60 + 1)
    resp = oauth.exchange(code, verifier)
    assert resp.status_code == 400
    assert resp.json() == {
        "error": "invalid_grant",
        "error_description": "expired authorization code",
    }
    control.update_settings(code_lifetime_seconds=5)
    code, verifier = oauth.get_code()
    control.advance_clock(6)
    assert oauth.exchange(code, verifier).status_code == 400


def test_pkce_verifier_checked(oauth):
    code, verifier = oauth.get_code()
    resp = oauth.exchange(code, verifier + "x")
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}
    assert oauth.exchange(code, None).json()["error_description"] == "invalid code verifier"
    assert oauth.exchange(code, verifier).status_code == 200


def test_redirect_uri_checked_on_exchange(oauth):
    code, verifier = oauth.get_code()
    resp = oauth.exchange(code, verifier, redirect_uri=REDIRECT_URI + "x")
    assert resp.status_code == 400
    assert resp.json()["error"] == "redirect_uri_mismatch"


def test_client_credentials_by_http_basic(oauth):
    code, verifier = oauth.get_code()
    resp = oauth.token(
        auth=(CLIENT_ID, CLIENT_SECRET),
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert resp.status_code == 200, resp.text
    refreshed = oauth.token(
        auth=(CLIENT_ID, CLIENT_SECRET),
        grant_type="refresh_token",
        refresh_token=resp.json()["refresh_token"],
    )
    assert refreshed.status_code == 200
    bad = oauth.token(
        auth=(CLIENT_ID, "wrong"),
        grant_type="refresh_token",
        refresh_token=resp.json()["refresh_token"],
    )
    assert bad.json()["error"] == "invalid_client"


def test_token_errors(oauth, session):
    rt = session["refresh_token"]
    cases = [
        (
            {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            ("unsupported_grant_type", "grant type not supported"),
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": rt, "client_id": "unknown",
             "client_secret": CLIENT_SECRET},
            ("invalid_client_id", "client identifier invalid"),
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": rt, "client_id": CLIENT_ID,
             "client_secret": "bad"},
            ("invalid_client", "invalid client credentials"),
        ),
        (
            {"grant_type": "refresh_token", "refresh_token": "5Aep-bogus",
             "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            ("invalid_grant", "expired access/refresh token"),
        ),
    ]  # fmt: skip
    for form, (error, description) in cases:
        resp = oauth.token(**form)
        assert resp.status_code == 400, form
        assert resp.headers["Content-Type"].startswith("application/json")
        assert resp.json() == {"error": error, "error_description": description}


def test_refresh_of_another_apps_token_is_authentication_failure(oauth, control, session):
    control.register_app("other-app", "other-secret", [REDIRECT_URI])
    resp = oauth.token(
        grant_type="refresh_token",
        refresh_token=session["refresh_token"],
        client_id="other-app",
        client_secret="other-secret",
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_refresh_without_rotation_keeps_refresh_token(oauth, session):
    first = oauth.refresh(session["refresh_token"])
    assert first.status_code == 200
    body = first.json()
    assert "refresh_token" not in body and "expires_in" not in body
    assert body["access_token"] != session["access_token"]
    assert oauth.refresh(session["refresh_token"]).status_code == 200


def test_rotation_invalidates_old_refresh_token(oauth, control, session):
    control.set_rotation(True)
    resp = oauth.refresh(session["refresh_token"])
    assert resp.status_code == 200
    new_rt = resp.json()["refresh_token"]
    assert new_rt != session["refresh_token"]
    reused = oauth.refresh(session["refresh_token"])
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert oauth.refresh(new_rt).status_code == 200
    counters = control.counters()
    assert counters["refresh_grants"] == 2 and counters["rejected_refreshes"] == 1


def test_token_endpoint_also_on_instance_host(oauth, sim, session):
    resp = oauth.refresh(session["refresh_token"], host=sim.instance_url)
    assert resp.status_code == 200
    assert resp.json()["instance_url"] == sim.instance_url


def test_rest_on_login_host_fails(oauth, sim, session):
    resp = oauth.rest("GET", f"{API}/limits", session["access_token"], host=sim.login_url)
    assert resp.status_code == 404
    assert resp.json()[0]["errorCode"] == "NOT_FOUND"
    resp = oauth.rest(
        "GET", f"{API}/query", session["access_token"], host=sim.login_url,
        params={"q": "SELECT Id FROM Account"},
    )  # fmt: skip
    assert resp.status_code == 404


def test_revoke_access_token(oauth, session):
    token = session["access_token"]
    assert oauth.rest("GET", f"{API}/limits", token).status_code == 200
    resp = oauth.http.post(f"{oauth.sim.login_url}/services/oauth2/revoke", data={"token": token})
    assert resp.status_code == 200
    resp = oauth.rest("GET", f"{API}/sobjects", token)
    assert resp.status_code == 401
    assert resp.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert oauth.refresh(session["refresh_token"]).status_code == 200


def test_revoke_refresh_token_kills_its_sessions(oauth, session):
    second = oauth.refresh(session["refresh_token"]).json()
    resp = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/revoke", data={"token": session["refresh_token"]}
    )
    assert resp.status_code == 200
    for token in (session["access_token"], second["access_token"]):
        assert oauth.rest("GET", f"{API}/sobjects", token).status_code == 401
    assert oauth.refresh(session["refresh_token"]).json()["error"] == "invalid_grant"
    unknown = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/revoke", data={"token": "nope"}
    )
    assert unknown.status_code == 400


def test_control_revokes_refresh_tokens_per_user(oauth, control, session):
    control.add_user("other@acme.sim")
    verifier, challenge = pkce_pair()
    resp = oauth.authorize(**oauth.authorize_params(challenge, login_hint="other@acme.sim"))
    other = oauth.exchange(_query(resp.headers["Location"])["code"], verifier).json()
    assert control.revoke_refresh_tokens(username="other@acme.sim") == 1
    assert oauth.refresh(other["refresh_token"]).status_code == 400
    assert oauth.refresh(session["refresh_token"]).status_code == 200
    assert control.revoke_refresh_tokens() == 1
    assert oauth.refresh(session["refresh_token"]).status_code == 400


def test_introspection(oauth, session):
    url = f"{oauth.sim.login_url}/services/oauth2/introspect"
    resp = oauth.http.post(
        url,
        data={"token": session["access_token"], "token_type_hint": "access_token"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["active"] is True
    assert body["client_id"] == CLIENT_ID
    assert body["username"] == "admin@acme.sim"
    assert body["sub"] == session["id"]
    assert body["scope"] == "api refresh_token"
    assert body["iat"] == int(session["issued_at"]) // 1000
    assert body["exp"] == body["iat"] + 7200
    assert body["nbf"] == body["iat"]
    form = {"token": "garbage", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert oauth.http.post(url, data=form).json() == {"active": False}
    form["client_secret"] = "bad"
    assert oauth.http.post(url, data=form).json()["error"] == "invalid_client"


def test_introspection_follows_session_timeout(oauth, control):
    control.set_session_timeout(900)
    session = oauth.login()
    resp = oauth.http.post(
        f"{oauth.sim.login_url}/services/oauth2/introspect",
        data={"token": session["access_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    body = resp.json()
    assert body["exp"] - body["iat"] == 900


def test_identity_url_and_userinfo(oauth, sim, session):
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    resp = requests.get(session["id"], headers=headers, timeout=10)
    assert resp.status_code == 200
    body = resp.json()
    info = sim.control.info()
    assert body["id"] == session["id"]
    assert body["user_id"] == info["user_id"] and body["user_id"].startswith("005")
    assert body["organization_id"] == info["org_id"] and body["organization_id"].startswith("00D")
    assert len(body["organization_id"]) == 18
    assert body["username"] == "admin@acme.sim"
    assert body["display_name"] and body["email"]
    assert body["urls"]["rest"] == f"{sim.instance_url}/services/data/v{{version}}/"
    assert requests.get(session["id"], timeout=10).status_code == 403
    resp = requests.get(f"{sim.login_url}/services/oauth2/userinfo", headers=headers, timeout=10)
    assert resp.status_code == 200
    assert resp.json()["preferred_username"] == "admin@acme.sim"


def test_session_timeout_gives_invalid_session(oauth, control, session):
    control.set_session_timeout(60)
    assert oauth.rest("GET", f"{API}/limits", session["access_token"]).status_code == 200
    control.advance_clock(61)
    resp = oauth.rest("GET", f"{API}/limits", session["access_token"])
    assert resp.status_code == 401
    assert resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"
