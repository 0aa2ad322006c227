"""OAuth 2.0 web-server flow on both hosts: authorize (consent page), token, revoke, introspect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template_string, request

from simulator.errors import OAuthError
from simulator.routes.plumbing import json_response, sim_state

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow Access? | {{ org_name }}</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:3rem auto}
button{padding:.5rem 1.5rem;margin-right:1rem}</style></head>
<body>
<h1>Allow Access?</h1>
<p class="org">Organization: <strong id="org-name">{{ org_name }}</strong></p>
<p class="user">Logged in as <strong id="username">{{ username }}</strong></p>
<p><strong id="app-name">{{ app_name }}</strong> is asking to:</p>
<ul id="scopes">{% for line, names in scope_lines %}
<li data-scope="{{ names|join(' ') }}">{{ line }}</li>{% endfor %}
</ul>
<form method="post" action="{{ action }}">
<input type="hidden" name="request_id" value="{{ request_id }}">
<button type=submit name=decision value=allow>Allow</button>
<button type=submit name=decision value=deny>Deny</button>
</form>
</body></html>
"""

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error | {{ org_name }}</title></head>
<body><h1>OAuth Error</h1>
<p id="error">error={{ error }}&amp;error_description={{ description }}</p>
<p>We can't authorize you because of an OAuth error. For more information, contact your
Salesforce administrator.</p></body></html>
"""

SCOPE_DESCRIPTIONS = {
    "api": "Access and manage your data (api)",
    "refresh_token": "Perform requests on your behalf at any time (refresh_token, offline_access)",
    "offline_access": "Perform requests on your behalf at any time (refresh_token, offline_access)",
    "id": "Access your basic information (id, profile, email, address, phone)",
    "full": "Full access (full)",
    "web": "Provide access to your data via the Web (web)",
    "openid": "Access unique user identifiers (openid)",
}


def scope_lines(scopes: list[str]) -> list[tuple[str, list[str]]]:
    """One consent line per description, naming every scope it covers, in request order.

    Salesforce shows `refresh_token` and `offline_access` as one permission; listing it once
    per scope would show the same sentence twice."""
    lines: dict[str, list[str]] = {}
    for scope in scopes:
        names = lines.setdefault(SCOPE_DESCRIPTIONS.get(scope, scope), [])
        if scope not in names:
            names.append(scope)
    return list(lines.items())


ALWAYS_ALLOWED_SCOPES = {"id", "openid", "profile", "email", "address", "phone"}

oauth_bp = Blueprint("oauth", __name__)


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _error_page(error: str, description: str) -> Response:
    html = render_template_string(
        ERROR_PAGE, org_name=sim_state().org_name, error=error, description=description
    )
    return Response(html, status=400, mimetype="text/html")


def _redirect_error(redirect_uri: str, error: str, description: str, state_param: str | None):
    params = {"error": error, "error_description": description}
    if state_param is not None:
        params["state"] = state_param
    return redirect(_add_query(redirect_uri, params), code=302)


def _approve(pending: dict[str, Any]) -> Response:
    state = sim_state()
    code = state.issue_code(
        pending["client_id"],
        pending["redirect_uri"],
        pending["scope"],
        pending["user_id"],
        pending["code_challenge"],
    )
    params = {"code": code}
    if pending["state"] is not None:
        params["state"] = pending["state"]
    return redirect(_add_query(pending["redirect_uri"], params), code=302)


@oauth_bp.get("/services/oauth2/authorize")
def authorize() -> Response:
    state = sim_state()
    args = request.args
    client_id = args.get("client_id", "")
    redirect_uri = args.get("redirect_uri", "")
    state_param = args.get("state")
    with state.lock:
        app = state.apps.get(client_id)
        if app is None:
            return _error_page("invalid_client_id", "client identifier invalid")
        if redirect_uri not in app.redirect_uris:
            return _error_page("redirect_uri_mismatch", "redirect_uri must match configuration")
        if args.get("response_type") != "code":
            return _redirect_error(
                redirect_uri, "unsupported_response_type", "response type not supported",
                state_param,
            )  # fmt: skip
        challenge = args.get("code_challenge", "")
        if not challenge:
            return _redirect_error(
                redirect_uri, "invalid_request", "missing required code challenge", state_param
            )
        if args.get("code_challenge_method", "S256") != "S256":
            return _redirect_error(
                redirect_uri, "invalid_request", "invalid code challenge method", state_param
            )
        scope = " ".join(args.get("scope", "").split()) or app.scopes
        allowed = set(app.scopes.split()) | ALWAYS_ALLOWED_SCOPES
        if any(s not in allowed for s in scope.split()):
            return _redirect_error(
                redirect_uri, "invalid_scope", "the requested scope is not allowed", state_param
            )
        user = state.default_user
        if args.get("login_hint"):
            user = state.find_user(args["login_hint"]) or user
        pending = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "user_id": user.user_id,
            "code_challenge": challenge,
            "state": state_param,
        }
        if app.auto_approve:
            return _approve(pending)
        request_id = state.ids.new("0Ah")
        state.pending[request_id] = pending
        html = render_template_string(
            CONSENT_PAGE,
            org_name=state.org_name,
            app_name=app.name,
            username=user.username,
            scope_lines=scope_lines(scope.split()),
            request_id=request_id,
            action=request.path,
        )
    return Response(html, mimetype="text/html")


@oauth_bp.post("/services/oauth2/authorize")
def authorize_decision() -> Response:
    state = sim_state()
    with state.lock:
        pending = state.pending.pop(request.form.get("request_id", ""), None)
        if pending is None:
            return _error_page("invalid_request", "invalid or expired authorization request")
        if request.form.get("decision") == "allow":
            return _approve(pending)
    return _redirect_error(
        pending["redirect_uri"], "access_denied", "end-user denied authorization", pending["state"]
    )


def _client_credentials() -> tuple[str | None, str | None]:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return unquote(auth.username or ""), unquote(auth.password or "")
    return request.form.get("client_id"), request.form.get("client_secret")


@oauth_bp.post("/services/oauth2/token")
def token() -> Response:
    state = sim_state()
    grant_type = request.form.get("grant_type")
    client_id, client_secret = _client_credentials()
    if grant_type == "authorization_code":
        body, _ = state.exchange_code(
            client_id,
            client_secret,
            request.form.get("code"),
            request.form.get("redirect_uri"),
            request.form.get("code_verifier"),
        )
    elif grant_type == "refresh_token":
        body, _ = state.refresh(client_id, client_secret, request.form.get("refresh_token"))
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    resp = json_response(body)
    resp.headers["Cache-Control"] = "no-cache, no-store"
    return resp


@oauth_bp.route("/services/oauth2/revoke", methods=["GET", "POST"])
def revoke() -> Response:
    token_value = request.values.get("token")
    if not sim_state().revoke(token_value):
        raise OAuthError("unsupported_token_type", "this token type is not supported")
    return Response("", status=200)


@oauth_bp.post("/services/oauth2/introspect")
def introspect() -> Response:
    state = sim_state()
    client_id, client_secret = _client_credentials()
    with state.lock:
        state.check_client(client_id, client_secret)
        return json_response(state.introspect(request.form.get("token")))
