"""Flask app factories for the simulator's two hosts (login and instance)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template_string,
    request,
)

from simulator import schema, soql
from simulator.state import (
    API_VERSIONS,
    LATEST_API_VERSION,
    OAuthError,
    SfError,
    SimState,
    fingerprint,
    fmt_dt,
)

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
VERSION_LABELS = {"62.0": "Winter '25", "61.0": "Summer '24", "60.0": "Spring '24"}


def _state() -> SimState:
    return current_app.config["SIM_STATE"]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _sf_error(exc: SfError) -> Response:
    return _json(exc.body(), exc.status)


def _oauth_error(exc: OAuthError) -> Response:
    return _json({"error": exc.error, "error_description": exc.description}, exc.status)


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if k in SENSITIVE_PARAMS else v) for k, v in pairs])


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        for key in ("refresh_token", "token", "code"):
            if request.form.get(key):
                return request.form[key]
    return request.args.get("token") or None


# ---------------------------------------------------------------- shared request plumbing


def _install_plumbing(app: Flask, state: SimState, role: str) -> None:
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
            return _json(
                {"error": fault.error_code, "error_description": fault.message},
                fault.status,
                headers,
            )
        return _json(
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
            token = _presented_token()
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
        return _json(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )

    @app.errorhandler(405)
    def _not_allowed(_e: Exception) -> Response:
        return _json(
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
        return _sf_error(exc)

    @app.errorhandler(OAuthError)
    def _oauth(exc: OAuthError) -> Response:
        return _oauth_error(exc)


# ---------------------------------------------------------------- OAuth (both hosts)

CONSENT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow Access? | {{ org_name }}</title>
<style>body{font-family:sans-serif;max-width:32rem;margin:3rem auto}
button{padding:.5rem 1.5rem;margin-right:1rem}</style></head>
<body>
<h1>Allow Access?</h1>
<p class="org">Organization: <strong id="org-name">{{ org_name }}</strong></p>
<p class="user">Logged in as <strong id="username">{{ username }}</strong></p>
<p><strong id="app-name">{{ app_name }}</strong> is asking to:</p>
<ul id="scopes">{% for s in scopes %}<li data-scope="{{ s }}">{{ descriptions.get(s, s) }}</li>
{% endfor %}</ul>
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
ALWAYS_ALLOWED_SCOPES = {"id", "openid", "profile", "email", "address", "phone"}

oauth_bp = Blueprint("oauth", __name__)


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _error_page(error: str, description: str) -> Response:
    html = render_template_string(
        ERROR_PAGE, org_name=_state().org_name, error=error, description=description
    )
    return Response(html, status=400, mimetype="text/html")


def _redirect_error(redirect_uri: str, error: str, description: str, state_param: str | None):
    params = {"error": error, "error_description": description}
    if state_param is not None:
        params["state"] = state_param
    return redirect(_add_query(redirect_uri, params), code=302)


def _approve(pending: dict[str, Any]) -> Response:
    state = _state()
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
    state = _state()
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
            scopes=scope.split(),
            descriptions=SCOPE_DESCRIPTIONS,
            request_id=request_id,
            action=request.path,
        )
    return Response(html, mimetype="text/html")


@oauth_bp.post("/services/oauth2/authorize")
def authorize_decision() -> Response:
    state = _state()
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
    state = _state()
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
    resp = _json(body)
    resp.headers["Cache-Control"] = "no-cache, no-store"
    return resp


@oauth_bp.route("/services/oauth2/revoke", methods=["GET", "POST"])
def revoke() -> Response:
    token_value = request.values.get("token")
    if not _state().revoke(token_value):
        raise OAuthError("unsupported_token_type", "this token type is not supported")
    return Response("", status=200)


@oauth_bp.post("/services/oauth2/introspect")
def introspect() -> Response:
    state = _state()
    client_id, client_secret = _client_credentials()
    with state.lock:
        state.check_client(client_id, client_secret)
        return _json(state.introspect(request.form.get("token")))


def _bearer_user():
    state = _state()
    access = state.access_token_state(_presented_token())
    if access is None:
        return None, None
    return access, state.users[access.user_id]


def _bad_token() -> Response:
    return Response("Bad_OAuth_Token", status=403, mimetype="text/plain")


def _identity_urls(user_id: str) -> dict[str, str]:
    state = _state()
    inst = state.instance_url or ""
    org = state.org_id
    return {
        "enterprise": f"{inst}/services/Soap/c/{{version}}/{org[:15]}",
        "metadata": f"{inst}/services/Soap/m/{{version}}/{org[:15]}",
        "partner": f"{inst}/services/Soap/u/{{version}}/{org[:15]}",
        "rest": f"{inst}/services/data/v{{version}}/",
        "sobjects": f"{inst}/services/data/v{{version}}/sobjects/",
        "search": f"{inst}/services/data/v{{version}}/search/",
        "query": f"{inst}/services/data/v{{version}}/query/",
        "recent": f"{inst}/services/data/v{{version}}/recent/",
        "profile": f"{inst}/{user_id}",
        "users": f"{inst}/services/data/v{{version}}/chatter/users",
        "custom_domain": inst,
    }


def _profile_tail(user_id: str) -> dict[str, Any]:
    """The fields userinfo and the identity URL both end with."""
    return {
        "urls": _identity_urls(user_id),
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_GB",
        "utcOffset": 0,
    }


@oauth_bp.route("/services/oauth2/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    state = _state()
    access, user = _bearer_user()
    if user is None:
        return _bad_token()
    return _json(
        {
            "sub": state.identity_url(user.user_id),
            "user_id": user.user_id,
            "organization_id": state.org_id,
            "preferred_username": user.username,
            "nickname": user.username.split("@")[0],
            "name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "zoneinfo": "Europe/London",
            **_profile_tail(user.user_id),
        }
    )


@oauth_bp.get("/id/<org_id>/<user_id>")
def identity(org_id: str, user_id: str) -> Response:
    state = _state()
    access, user = _bearer_user()
    if user is None:
        return _bad_token()
    if org_id != state.org_id or user_id != user.user_id:
        return Response("Bad_Id", status=403, mimetype="text/plain")
    return _json(
        {
            "id": state.identity_url(user.user_id),
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": state.org_id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "timezone": "Europe/London",
            "status": {"created_date": None, "body": None},
            **_profile_tail(user.user_id),
            "last_modified_date": fmt_dt(state.now()),
            "is_app_installed": True,
        }
    )


# ---------------------------------------------------------------- REST API (instance host)

rest_bp = Blueprint("rest", __name__)


def _versions() -> list[dict[str, str]]:
    return [
        {
            "label": VERSION_LABELS.get(v, f"API {v}"),
            "url": f"/services/data/v{v}",
            "version": v,
        }
        for v in API_VERSIONS
    ]


@rest_bp.get("/services/data")
@rest_bp.get("/services/data/")
def versions() -> Response:
    return _json(_versions())


def _authenticate(count: bool = True) -> None:
    state = _state()
    version = request.view_args.get("version") if request.view_args else None
    if version is not None and version not in API_VERSIONS:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    access = state.access_token_state(_presented_token())
    if access is None:
        raise SESSION_INVALID
    if count and not state.count_api_call():
        raise SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


@rest_bp.before_request
def _rest_auth() -> None:
    if request.path.rstrip("/") == "/services/data":
        return
    _authenticate(count=request.endpoint != "rest.limits")


def _body() -> Any:
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


def _body_object() -> dict[str, Any]:
    body = _body()
    if not isinstance(body, dict):
        raise SfError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject out of the request body: expected an object",
        )
    return body


@rest_bp.get("/services/data/v<version>/")
@rest_bp.get("/services/data/v<version>")
def resources(version: str) -> Response:
    base = f"/services/data/v{version}"
    return _json(
        {
            name: f"{base}/{name}"
            for name in ("sobjects", "query", "queryAll", "limits", "composite")
        }
    )


def _object_info(obj: str, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    return {
        "name": obj,
        "label": schema.OBJECTS[obj]["label"],
        "labelPlural": schema.OBJECTS[obj]["label"] + "s",
        "keyPrefix": schema.key_prefix(obj),
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "custom": False,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


@rest_bp.get("/services/data/v<version>/sobjects")
@rest_bp.get("/services/data/v<version>/sobjects/")
def sobjects(version: str) -> Response:
    return _json(
        {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [_object_info(o, version) for o in schema.object_names()],
        }
    )


@rest_bp.get("/services/data/v<version>/sobjects/<obj>/describe")
@rest_bp.get("/services/data/v<version>/sobjects/<obj>/describe/")
def describe(version: str, obj: str) -> Response:
    state = _state()
    obj = state.resolve_object(obj)
    required = set(schema.OBJECTS[obj]["required"])
    fields = []
    with state.lock:
        all_fields = dict(schema.all_fields(obj))
        for custom in sorted(state.custom_fields[obj]):
            all_fields[custom] = "string"
    for name, ftype in all_fields.items():
        writable = schema.writable(obj, name) or name.endswith("__c")
        fields.append(
            {
                "name": name,
                "label": name,
                "type": ftype,
                "nillable": name not in required and ftype != "boolean" and name != "Id",
                "createable": writable,
                "updateable": writable,
                "externalId": name.endswith("__c"),
                "idLookup": name == "Id" or name.endswith("__c"),
                "custom": name.endswith("__c"),
                "referenceTo": (
                    [schema.REFERENCE_TARGETS[name]] if name in schema.REFERENCE_TARGETS else []
                ),
            }
        )
    return _json({**_object_info(obj, version), "fields": fields})


@rest_bp.get("/services/data/v<version>/sobjects/<obj>")
@rest_bp.get("/services/data/v<version>/sobjects/<obj>/")
def sobject_info(version: str, obj: str) -> Response:
    obj = _state().resolve_object(obj)
    return _json({"objectDescribe": _object_info(obj, version), "recentItems": []})


@rest_bp.post("/services/data/v<version>/sobjects/<obj>")
@rest_bp.post("/services/data/v<version>/sobjects/<obj>/")
def create(version: str, obj: str) -> Response:
    state = _state()
    state.resolve_object(obj)
    record_id = state.create_record(obj, _body_object())
    return _json({"id": record_id, "success": True, "errors": []}, 201)


def _range_args() -> tuple[Any, Any]:
    out = []
    for key in ("start", "end"):
        value = request.args.get(key)
        if not value:
            raise SfError(400, "MISSING_ARGUMENT", f"{key} was not specified")
        try:
            out.append(soql.parse_datetime(value))
        except ValueError:
            raise SfError(
                400, "INVALID_PARAMETER_VALUE", f"Unable to parse {key} date: {value}"
            ) from None
    if out[0] > out[1]:
        raise SfError(400, "INVALID_REPLICATION_DATE", "start date must be before end date")
    return out[0], out[1]


@rest_bp.get("/services/data/v<version>/sobjects/<obj>/updated")
@rest_bp.get("/services/data/v<version>/sobjects/<obj>/updated/")
def updated(version: str, obj: str) -> Response:
    start, end = _range_args()
    return _json(_state().updated_ids(obj, start, end))


@rest_bp.get("/services/data/v<version>/sobjects/<obj>/deleted")
@rest_bp.get("/services/data/v<version>/sobjects/<obj>/deleted/")
def deleted(version: str, obj: str) -> Response:
    start, end = _range_args()
    return _json(_state().deleted_ids(obj, start, end))


@rest_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["GET"])
def get_record(version: str, obj: str, record_id: str) -> Response:
    fields = request.args.get("fields")
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    record = _state().get_record(obj, record_id, names)
    record["attributes"]["url"] = record["attributes"]["url"].replace(
        f"v{LATEST_API_VERSION}", f"v{version}"
    )
    return _json(record)


@rest_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["PATCH"])
def update_record(version: str, obj: str, record_id: str) -> Response:
    state = _state()
    state.resolve_object(obj)
    state.update_record(obj, record_id, _body_object())
    return Response(status=204)


@rest_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["DELETE"])
def delete_record(version: str, obj: str, record_id: str) -> Response:
    _state().delete_record(obj, record_id)
    return Response(status=204)


@rest_bp.route("/services/data/v<version>/sobjects/<obj>/<field>/<path:value>", methods=["PATCH"])
def upsert(version: str, obj: str, field: str, value: str) -> Response:
    state = _state()
    state.resolve_object(obj)
    body = _body_object()
    record_id, created = state.upsert_record(obj, field, value, body)
    return _json(
        {"id": record_id, "success": True, "errors": [], "created": created},
        201 if created else 200,
    )


def _batch_size() -> int:
    header = request.headers.get("Sforce-Query-Options", "")
    default = int(_state().settings["default_batch_size"])
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                return max(200, min(2000, int(value.strip())))
            except ValueError:
                return default
    return default


def _run_query(version: str, include_deleted: bool) -> Response:
    text = request.args.get("q")
    if text is None:
        raise SfError(400, "MALFORMED_QUERY", "A query string must be provided with the q param")
    return _json(_state().run_query(text, include_deleted, _batch_size(), version))


@rest_bp.get("/services/data/v<version>/query")
@rest_bp.get("/services/data/v<version>/query/")
def query(version: str) -> Response:
    return _run_query(version, include_deleted=False)


@rest_bp.get("/services/data/v<version>/queryAll")
@rest_bp.get("/services/data/v<version>/queryAll/")
def query_all(version: str) -> Response:
    return _run_query(version, include_deleted=True)


@rest_bp.get("/services/data/v<version>/query/<cursor>")
@rest_bp.get("/services/data/v<version>/queryAll/<cursor>")
def query_more(version: str, cursor: str) -> Response:
    locator, _, offset = cursor.rpartition("-")
    if not locator or not offset.isdigit():
        raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _json(_state().query_more(locator, int(offset), version))


@rest_bp.get("/services/data/v<version>/limits")
@rest_bp.get("/services/data/v<version>/limits/")
def limits(version: str) -> Response:
    state = _state()
    with state.lock:
        api_max = int(state.settings["api_max"])
        remaining = max(0, api_max - state.api_usage)
    return _json(
        {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": api_max, "Remaining": remaining},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "HourlyTimeBasedWorkflow": {"Max": 1000, "Remaining": 1000},
        }
    )


def _composite_error(exc: SfError) -> dict[str, Any]:
    return {
        "id": None,
        "success": False,
        "errors": [
            {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields or []}
        ],
    }


@rest_bp.post("/services/data/v<version>/composite/sobjects")
def composite_create(version: str) -> Response:
    state = _state()
    body = _body_object()
    records = body.get("records")
    if not isinstance(records, list):
        raise SfError(400, "JSON_PARSER_ERROR", "records must be a list")
    if len(records) > 200:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone"))
    results: list[dict[str, Any]] = []
    created: list[tuple[str, str]] = []
    with state.lock:
        for item in records:
            try:
                if not isinstance(item, dict):
                    raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
                obj_type = (item.get("attributes") or {}).get("type")
                if not obj_type or schema.canonical_object(obj_type) is None:
                    raise SfError(400, "INVALID_TYPE", "sObject type must be specified")
                obj = schema.canonical_object(obj_type)
                record_id = state.create_record(obj, item)
                created.append((obj, record_id))
                results.append({"id": record_id, "success": True, "errors": []})
            except SfError as exc:
                results.append(_composite_error(exc))
        if all_or_none and any(not r["success"] for r in results):
            for obj, record_id in created:
                state.records[obj].pop(record_id, None)
            rolled = SfError(
                400,
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was "
                "using AllOrNone header",
            )
            results = [_composite_error(rolled) if r["success"] else r for r in results]
    return _json(results)


# ---------------------------------------------------------------- login host: no REST API

login_only_bp = Blueprint("login_only", __name__)


@login_only_bp.route("/services/data", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
@login_only_bp.route("/services/data/", methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
@login_only_bp.route(
    "/services/data/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE", "PUT"]
)
def no_rest_here(rest: str = "") -> Response:
    return _json(
        [
            {
                "errorCode": "NOT_FOUND",
                "message": "The REST API is not served on the login host; use instance_url",
            }
        ],
        404,
    )


# ---------------------------------------------------------------- factories


def create_login_app(state: SimState) -> Flask:
    """The login host: OAuth endpoints, identity URL and the /_sim control API."""
    from simulator.control_api import control_bp

    app = Flask("simulator.login")
    _install_plumbing(app, state, "login")
    app.register_blueprint(oauth_bp)
    app.register_blueprint(login_only_bp)
    app.register_blueprint(control_bp)
    return app


def create_instance_app(state: SimState) -> Flask:
    """The instance host: REST API plus the OAuth endpoints (as a My Domain serves them)."""
    app = Flask("simulator.instance")
    _install_plumbing(app, state, "instance")
    app.register_blueprint(oauth_bp)
    app.register_blueprint(rest_bp)
    return app
