"""Request plumbing both hosts install, and the helpers every blueprint uses."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask, Response, current_app, g, request

from simulator.errors import OAuthError, SfError
from simulator.state import API_VERSIONS, SimState
from simulator.values import fingerprint, fmt_dt

SENSITIVE_PARAMS = {
    "token",
    "code",
    "client_secret",
    "code_verifier",
    "refresh_token",
    "access_token",
    "password",
}
SESSION_INVALID = SfError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def sim_state() -> SimState:
    return current_app.config["SIM_STATE"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def sf_error_response(exc: SfError) -> Response:
    return json_response(exc.body(), exc.status)


def oauth_error_response(exc: OAuthError) -> Response:
    return json_response({"error": exc.error, "error_description": exc.description}, exc.status)


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if k in SENSITIVE_PARAMS else v) for k, v in pairs])


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        for key in ("refresh_token", "token", "code"):
            if request.form.get(key):
                return request.form[key]
    return request.args.get("token") or None


def install_plumbing(app: Flask, state: SimState, role: str) -> None:
    app.config["SIM_STATE"] = state
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def _before() -> Response | None:
        g.started = time.monotonic()
        g.entered = False
        g.fault_html = False
        base = request.host_url.rstrip("/")
        if role == "login" and state.login_url is None:
            state.login_url = base
        if role == "instance" and state.instance_url is None:
            state.instance_url = base
        if role == "instance":
            state.enter_request()
            g.entered = True
        if request.path.startswith("/_sim"):
            return None
        fault = state.take_fault(request.path, role)
        if fault is None:
            return None
        if fault.delay_seconds:
            time.sleep(float(fault.delay_seconds))
        if not fault.status:
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.html:
            g.fault_html = True
            body = (
                f"<html><head><title>{fault.status} {fault.message}</title></head><body>"
                f"<h1>{fault.status} {fault.message}</h1><hr><p>edge proxy</p></body></html>"
            )
            resp = Response(body, status=fault.status, mimetype="text/html")
            resp.headers.update(headers)
            return resp
        if request.path.startswith("/services/oauth2"):
            return json_response(
                {"error": fault.error_code, "error_description": fault.message},
                fault.status,
                headers,
            )
        return json_response(
            [{"message": fault.message, "errorCode": fault.error_code}], fault.status, headers
        )

    @app.after_request
    def _after(resp: Response) -> Response:
        if (
            role == "instance"
            and request.path.startswith("/services/data")
            and not g.get("fault_html")
        ):
            resp.headers["Sforce-Limit-Info"] = state.limit_info()
        if not request.path.startswith("/_sim"):
            token = presented_token()
            state.record_request(
                {
                    "ts": fmt_dt(state.now()),
                    "method": request.method,
                    "host": role,
                    "path": request.path,
                    "query": _redact_query(request.query_string.decode("latin-1")),
                    "status": resp.status_code,
                    "token_id": state.token_id_for(token),
                    "token_fingerprint": fingerprint(token) if token else None,
                    "duration_ms": round((time.monotonic() - g.get("started", 0.0)) * 1000, 1),
                }
            )
        return resp

    @app.teardown_request
    def _teardown(_exc: BaseException | None) -> None:
        if g.get("entered"):
            state.leave_request()
            g.entered = False

    @app.errorhandler(404)
    def _not_found(_e: Exception) -> Response:
        return json_response(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )

    @app.errorhandler(405)
    def _not_allowed(_e: Exception) -> Response:
        return json_response(
            [
                {
                    "errorCode": "METHOD_NOT_ALLOWED",
                    "message": f"HTTP Method '{request.method}' not allowed.",
                }
            ],
            405,
        )

    @app.errorhandler(SfError)
    def _sf(exc: SfError) -> Response:
        return sf_error_response(exc)

    @app.errorhandler(OAuthError)
    def _oauth(exc: OAuthError) -> Response:
        return oauth_error_response(exc)


def authenticate(count: bool = True) -> None:
    """Check the API version and the bearer session; count one API call unless told not to."""
    state = sim_state()
    version = request.view_args.get("version") if request.view_args else None
    if version is not None and version not in API_VERSIONS:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    access = state.access_token_state(presented_token())
    if access is None:
        raise SESSION_INVALID
    if count and not state.count_api_call():
        raise SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def request_body() -> Any:
    raw = request.get_data(as_text=True)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Unexpected character in request body at position {getattr(exc, 'pos', 0)}: "
            "expected a valid JSON value",
        ) from None


def body_object() -> dict[str, Any]:
    body = request_body()
    if not isinstance(body, dict):
        raise SfError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject out of the request body: expected an object",
        )
    return body


# Endpoints that check the session but do not count against the daily allocation.
UNCOUNTED_ENDPOINTS = {"query.limits"}


def authenticate_rest() -> None:
    """``before_request`` hook of every REST blueprint (``/services/data`` itself is open)."""
    if request.path.rstrip("/") == "/services/data":
        return
    authenticate(count=request.endpoint not in UNCOUNTED_ENDPOINTS)
