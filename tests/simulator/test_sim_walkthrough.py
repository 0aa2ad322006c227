"""The walkthroughs issue 3 asks for, end to end over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from simhelpers import API, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, consent_request_id, pkce_pair


def test_walkthrough_authorize_query_expire_refresh(oauth, control, sim):
    control.update_app(CLIENT_ID, auto_approve=False)
    seeded = control.seed("Contact", 4500, per_timestamp=4)

    # 1. authorize with PKCE through the consent page
    verifier, challenge = pkce_pair()
    params = oauth.authorize_params(challenge, scope="api refresh_token", state="walk-1")
    page = oauth.authorize(**params)
    assert page.status_code == 200 and "Allow" in page.text
    consent = oauth.http.post(
        f"{sim.login_url}/services/oauth2/authorize",
        data={"request_id": consent_request_id(page.text), "decision": "allow"},
        allow_redirects=False,
    )
    assert consent.status_code == 302
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert query["state"] == ["walk-1"]

    # 2. exchange the code
    token = oauth.token(
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert token.status_code == 200
    tokens = token.json()
    assert "expires_in" not in tokens and tokens["refresh_token"]
    instance = tokens["instance_url"]
    assert instance == sim.instance_url

    # 3. query 4,500 records in three pages
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    soql = "SELECT Id, Email, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"
    resp = oauth.http.get(f"{instance}{API}/query", params={"q": soql}, headers=headers)
    pages = []
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["totalSize"] == 4500
        pages.append(len(body["records"]))
        if body["done"]:
            assert "nextRecordsUrl" not in body
            break
        records_so_far = body
        resp = oauth.http.get(f"{instance}{body['nextRecordsUrl']}", headers=headers)
    assert pages == [2000, 2000, 500]
    assert records_so_far["records"][-1]["Id"] == seeded[3999]
    assert body["records"][-1]["Id"] == seeded[-1]

    # 4. sessions expire: 401 INVALID_SESSION_ID
    control.expire_sessions()
    resp = oauth.http.get(f"{instance}{API}/query", params={"q": soql}, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]

    # 5. refresh, then the same call succeeds
    refreshed = oauth.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert "refresh_token" not in new
    headers = {"Authorization": f"Bearer {new['access_token']}"}
    resp = oauth.http.get(f"{new['instance_url']}{API}/query", params={"q": soql}, headers=headers)
    assert resp.status_code == 200 and resp.json()["totalSize"] == 4500

    counters = control.counters()
    assert counters["code_grants"] == 1 and counters["refresh_grants"] == 1
    assert counters["api_calls"] == 4  # three pages + the replay; the 401 does not count


def test_rotation_reuse_of_old_refresh_token_is_invalid_grant(oauth, control):
    control.set_rotation(True)
    tokens = oauth.login(scope="api refresh_token offline_access")
    first = oauth.refresh(tokens["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != tokens["refresh_token"]
    reuse = oauth.refresh(tokens["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert oauth.refresh(rotated).status_code == 200
    assert control.counters()["rejected_refreshes"] == 1
