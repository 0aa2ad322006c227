"""The web-server OAuth flow with Salesforce: authorize URL (PKCE S256), code exchange,
identity, revocation.

requests-oauthlib builds the authorize URL and the token request. oauthlib refuses plain http
(`InsecureTransportError`); the simulator runs on http://127.0.0.1, so http is accepted for
loopback hosts only: oauthlib is handed the https form of the URL and a transport adapter,
mounted for that loopback host alone, sends it over http. A real host is never reached over
http, and nothing process-wide (like OAUTHLIB_INSECURE_TRANSPORT) is switched on.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from oauthlib.oauth2 import OAuth2Error, WebApplicationClient
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth2Session

from .errors import TokenError, TransportError
from .http import allowed_transport, is_loopback_url

AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"
REVOKE_PATH = "/services/oauth2/revoke"
DEFAULT_TIMEOUT = 30.0

# requests-oauthlib logs whole token requests and responses (client secret, tokens) at DEBUG.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.INFO)


def _as_https(url: str) -> str:
    """The https form of an allowed URL, for oauthlib's transport check."""
    if not allowed_transport(url):
        raise TokenError(
            "insecure_transport",
            f"refusing to send OAuth requests to {url!r}: https is required "
            "(http only for 127.0.0.1, localhost or ::1)",
        )
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="https"))


class _LoopbackHTTPAdapter(HTTPAdapter):
    """Sends https://<loopback>/... over plain http (mounted for one loopback host only)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        if url.startswith("https://") and is_loopback_url(url):
            request.url = "http://" + url[len("https://") :]
        return super().send(request, *args, **kwargs)


def _mount_loopback(session: requests.Session, original: str) -> None:
    parts = urlsplit(original)
    if parts.scheme.lower() == "http":
        session.mount(f"https://{parts.netloc}/", _LoopbackHTTPAdapter())


def _restore_scheme(original: str, url: str) -> str:
    if urlsplit(original).scheme.lower() == "http":
        return urlunsplit(urlsplit(url)._replace(scheme="http"))
    return url


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback needs to finish the flow."""

    url: str
    state: str
    code_verifier: str


def new_state() -> str:
    """A random state value: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def authorization_request(
    login_url: str,
    client_id: str,
    redirect_uri: str,
    scope: str,
    *,
    state: str | None = None,
) -> AuthorizationRequest:
    """Build the authorize URL: response_type=code, prompt=consent, PKCE S256."""
    base = login_url.rstrip("/")
    client = WebApplicationClient(client_id)
    oauth = OAuth2Session(
        client=client, redirect_uri=redirect_uri, scope=scope.split(), pkce="S256"
    )
    url, state = oauth.authorization_url(
        _as_https(base + AUTHORIZE_PATH), state=state or new_state(), prompt="consent"
    )
    return AuthorizationRequest(
        url=_restore_scheme(base, url), state=state, code_verifier=str(client.code_verifier)
    )


def _raise_token_error(response: requests.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        raise TokenError(
            str(body["error"]),
            str(body.get("error_description") or ""),
            status=response.status_code,
        )
    raise TokenError(
        "unexpected_response",
        f"the token endpoint answered HTTP {response.status_code} without an OAuth error",
        status=response.status_code,
    )


def exchange_code(
    login_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Trade an authorization code for tokens (client secret and PKCE verifier in the body).

    Raises TokenError with Salesforce's `error`/`error_description`, or TransportError.
    """
    base = login_url.rstrip("/")
    token_url = base + TOKEN_PATH
    # No scope on this session: Salesforce reports the granted scope in its own order and
    # oauthlib would call any difference a "scope change" and raise.
    oauth = OAuth2Session(client=WebApplicationClient(client_id), redirect_uri=redirect_uri)

    def _check_status(response: requests.Response) -> requests.Response:
        if response.status_code != 200:
            _raise_token_error(response)
        return response

    _mount_loopback(oauth, base)
    oauth.register_compliance_hook("access_token_response", _check_status)
    try:
        token = oauth.fetch_token(
            _as_https(token_url),
            code=code,
            client_secret=client_secret,
            include_client_id=True,
            code_verifier=code_verifier,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise TransportError(
            f"cannot reach {base}: {type(exc).__name__}", error_code="connection_error"
        ) from None
    except OAuth2Error as exc:
        raise TokenError(exc.error or "invalid_response", exc.description or "") from None
    return dict(token)


def fetch_identity(
    identity_url: str, access_token: str, *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """GET the identity URL (the token response's `id`): username, user_id, organization_id."""
    if not allowed_transport(identity_url):
        raise TokenError("invalid_identity_url", f"the identity URL {identity_url!r} is not https")
    try:
        response = requests.get(
            identity_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise TransportError(
            f"cannot reach the identity URL: {type(exc).__name__}", error_code="connection_error"
        ) from None
    if response.status_code != 200:
        raise TokenError(
            "identity_failed",
            f"the identity URL answered HTTP {response.status_code}: {response.text[:200]}",
            status=response.status_code,
        )
    try:
        identity = response.json()
    except ValueError:
        identity = None
    if not isinstance(identity, Mapping) or not all(
        identity.get(key) for key in ("user_id", "organization_id", "username")
    ):
        raise TokenError("identity_failed", "the identity response lacks user, org or username")
    return dict(identity)


def revoke_token(login_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Revoke a refresh (or access) token at Salesforce; True when it is gone there.

    An already invalid token counts as revoked. Raises TransportError when Salesforce could
    not be reached, so the caller can say the grant may still exist.
    """
    url = login_url.rstrip("/") + REVOKE_PATH
    if not allowed_transport(url):
        raise TokenError("insecure_transport", f"refusing to send a token to {url!r}")
    try:
        response = requests.post(url, data={"token": token}, timeout=timeout)
    except requests.RequestException as exc:
        raise TransportError(
            f"cannot reach {login_url}: {type(exc).__name__}", error_code="connection_error"
        ) from None
    if response.status_code == 200:
        return True
    if response.status_code == 400:
        # Salesforce answers 400 unsupported_token_type for a token it no longer knows.
        return True
    if response.status_code >= 500:
        raise TransportError(
            f"Salesforce answered HTTP {response.status_code} to the revocation",
            status=response.status_code,
            error_code="server_error",
        )
    return False
