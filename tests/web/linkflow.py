"""Helpers for tests that walk the OAuth link flow against the simulator over HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.conftest import SIM_CLIENT_ID, SIM_CLIENT_SECRET


def service_body(sim: Any, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "sim",
        "client_id": SIM_CLIENT_ID,
        "client_secret": SIM_CLIENT_SECRET,
        "login_url": sim.login_url,
    }
    body.update(overrides)
    return body


def consent(authorize_url: str, decision: str = "allow", http: Any = None) -> str:
    """Open the authorize URL, answer the consent page if shown; return the redirect target."""
    http = http or requests.Session()
    response = http.get(authorize_url, allow_redirects=False, timeout=10)
    if response.status_code == 200 and "Allow Access?" in response.text:
        request_id = re.search(r'name="request_id" value="([^"]+)"', response.text)
        assert request_id, response.text
        action = urlsplit(authorize_url)._replace(query="").geturl()
        response = http.post(
            action,
            data={"request_id": request_id.group(1), "decision": decision},
            allow_redirects=False,
            timeout=10,
        )
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return response.headers["Location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
