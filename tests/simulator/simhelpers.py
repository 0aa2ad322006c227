"""Helpers shared by the simulator tests (imported as ``simhelpers``; unique name on purpose)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from simulator.server import SimulatorServer

CLIENT_ID = "sim-test-client"
CLIENT_SECRET = "sim-test-secret"
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
API = "/services/data/v62.0"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class OAuthHelper:
    """Drives the simulator like a client would, over real HTTP."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.http = requests.Session()

    def authorize_params(self, challenge: str, **overrides: Any) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": "api refresh_token",
            "state": "st-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides: Any) -> requests.Response:
        return self.http.get(
            f"{self.sim.login_url}/services/oauth2/authorize",
            params=overrides,
            allow_redirects=False,
            timeout=10,
        )

    def get_code(self, scope: str = "api refresh_token") -> tuple[str, str]:
        """(code, verifier) through an auto-approving authorize call."""
        verifier, challenge = pkce_pair()
        resp = self.authorize(**self.authorize_params(challenge, scope=scope))
        assert resp.status_code == 302, resp.text
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        return query["code"][0], verifier

    def token(self, host: str | None = None, auth: Any = None, **form: Any) -> requests.Response:
        return self.http.post(
            f"{host or self.sim.login_url}/services/oauth2/token", data=form, auth=auth, timeout=10
        )

    def exchange(self, code: str, verifier: str, **extra: Any) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        form.update(extra)
        return self.token(**{k: v for k, v in form.items() if v is not None})

    def refresh(self, refresh_token: str, host: str | None = None) -> requests.Response:
        return self.token(
            host=host,
            grant_type="refresh_token",
            refresh_token=refresh_token,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )

    def login(self, scope: str = "api refresh_token") -> dict[str, Any]:
        code, verifier = self.get_code(scope)
        resp = self.exchange(code, verifier)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def rest(
        self, method: str, path: str, token: str | None, host: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{host or self.sim.instance_url}{path}"
        return self.http.request(method, url, headers=headers, timeout=30, **kw)


def consent_request_id(html: str) -> str:
    match = re.search(r'name="request_id" value="([^"]+)"', html)
    assert match, html
    return match.group(1)
