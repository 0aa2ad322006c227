"""The private control API (``/_sim/...`` on the login host): JSON in, JSON out, no auth."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, request

from simulator import soql
from simulator.errors import SfError
from simulator.ops import Fault
from simulator.state import SimState
from simulator.values import fmt_dt

control_bp = Blueprint("sim_control", __name__, url_prefix="/_sim")


def _state() -> SimState:
    return current_app.config["SIM_STATE"]


def _ok(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _fail(message: str, status: int = 400) -> Response:
    return _ok({"error": message}, status)


def _payload() -> dict[str, Any]:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


@control_bp.errorhandler(ValueError)
@control_bp.errorhandler(KeyError)
@control_bp.errorhandler(TypeError)
def _bad_request(exc: Exception) -> Response:
    return _fail(f"{type(exc).__name__}: {exc}")


@control_bp.errorhandler(SfError)
def _sf_error(exc: SfError) -> Response:
    return _ok({"error": exc.message, "errorCode": exc.error_code}, exc.status)


@control_bp.get("/")
def index() -> Response:
    """Every control endpoint with its methods and one line on what it does."""
    endpoints = []
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith(f"{control_bp.name}.") or rule.rule == "/_sim/":
            continue
        view = current_app.view_functions[rule.endpoint]
        doc = (view.__doc__ or "").strip().splitlines()
        endpoints.append(
            {
                "path": rule.rule,
                "methods": sorted(m for m in rule.methods or () if m not in ("HEAD", "OPTIONS")),
                "description": doc[0] if doc else "",
            }
        )
    state = _state()
    return _ok(
        {
            "simulator": "Forcebot Salesforce simulator",
            "login_url": state.login_url,
            "instance_url": state.instance_url,
            "endpoints": sorted(endpoints, key=lambda e: (e["path"], e["methods"])),
        }
    )


@control_bp.get("/info")
def info() -> Response:
    """The org: login and instance URLs, org id and name, default user, simulated now."""
    state = _state()
    user = state.default_user
    return _ok(
        {
            "login_url": state.login_url,
            "instance_url": state.instance_url,
            "org_id": state.org_id,
            "org_name": state.org_name,
            "user_id": user.user_id,
            "username": user.username,
            "identity_url": state.identity_url(user.user_id),
            "now": fmt_dt(state.now()),
        }
    )


@control_bp.post("/reset")
def reset() -> Response:
    """Forget everything: apps, users, tokens, records, faults, log, counters, settings."""
    _state().reset()
    return _ok({"reset": True})


def _app_json(app: Any) -> dict[str, Any]:
    return asdict(app)


@control_bp.get("/apps")
def list_apps() -> Response:
    """The registered connected apps."""
    state = _state()
    with state.lock:
        return _ok([_app_json(a) for a in state.apps.values()])


@control_bp.post("/apps")
def register_app() -> Response:
    """Register a connected app {client_id, client_secret, redirect_uris, name, auto_approve,
    scopes}."""
    data = _payload()
    client_id = data.pop("client_id", None)
    if not client_id:
        raise ValueError("client_id is required")
    secret = data.pop("client_secret", "")
    state = _state()
    if client_id not in state.apps and not secret:
        raise ValueError("client_secret is required for a new app")
    app = state.register_app(client_id, secret, **data)
    return _ok(_app_json(app), 201)


@control_bp.route("/apps/<client_id>", methods=["PATCH", "PUT"])
def update_app(client_id: str) -> Response:
    """Change a connected app (redirect_uris, auto_approve, scopes, client_secret, ...)."""
    state = _state()
    if client_id not in state.apps:
        return _fail("unknown client_id", 404)
    data = _payload()
    data.pop("client_id", None)
    secret = data.pop("client_secret", "")
    return _ok(_app_json(state.register_app(client_id, secret, **data)))


@control_bp.post("/users")
def add_user() -> Response:
    """Add a user {username, first_name, last_name}."""
    data = _payload()
    username = data.get("username")
    if not username:
        raise ValueError("username is required")
    user = _state().add_user(username, data.get("first_name", "Sim"), data.get("last_name", "User"))
    return _ok(asdict(user), 201)


@control_bp.post("/sessions/expire")
def expire_sessions() -> Response:
    """End every access token now (the next call gets 401 INVALID_SESSION_ID)."""
    return _ok({"expired": _state().expire_sessions()})


@control_bp.post("/refresh_tokens/revoke")
def revoke_refresh_tokens() -> Response:
    """Revoke every refresh token, or one user's {username}."""
    data = _payload()
    return _ok({"revoked": _state().revoke_refresh_tokens(data.get("username"))})


@control_bp.get("/settings")
def get_settings() -> Response:
    """The settings (rotation, session timeout, API max and usage, batch size, zone)."""
    return _ok(_state().get_settings())


@control_bp.route("/settings", methods=["POST", "PATCH"])
def update_settings() -> Response:
    """Change settings, e.g. {"org_time_zone": "Europe/Paris"}."""
    return _ok(_state().update_settings(**_payload()))


@control_bp.post("/rotation")
def rotation() -> Response:
    """Turn refresh token rotation on or off {enabled}."""
    enabled = bool(_payload().get("enabled", True))
    return _ok(_state().update_settings(rotate_refresh_tokens=enabled))


@control_bp.post("/session_timeout")
def session_timeout() -> Response:
    """Set the session timeout {seconds}."""
    seconds = int(_payload()["seconds"])
    return _ok(_state().update_settings(session_timeout_seconds=seconds))


@control_bp.post("/limits")
def limits() -> Response:
    """Set the daily API allocation and usage {max, usage}."""
    data = _payload()
    changes: dict[str, Any] = {}
    if "max" in data:
        changes["api_max"] = int(data["max"])
    if "usage" in data:
        changes["api_usage"] = int(data["usage"])
    settings = _state().update_settings(**changes)
    return _ok({"max": settings["api_max"], "usage": settings["api_usage"]})


@control_bp.post("/clock")
def clock() -> Response:
    """Move the simulated clock forward {advance_seconds}."""
    seconds = float(_payload().get("advance_seconds", 0))
    return _ok({"now": fmt_dt(_state().advance_clock(seconds))})


@control_bp.get("/faults")
def list_faults() -> Response:
    """The injected faults still pending."""
    return _ok(_state().list_faults())


@control_bp.post("/faults")
def add_fault() -> Response:
    """Inject a fault {prefix, count, status, error_code, message, delay_seconds, retry_after,
    html, host, after}; `after` lets that many matching requests through first."""
    data = _payload()
    prefix = data.pop("prefix", None)
    if not prefix:
        raise ValueError("prefix is required")
    allowed = set(Fault.__dataclass_fields__) - {"id", "prefix"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    fault = _state().add_fault(prefix, **data)
    return _ok(asdict(fault), 201)


@control_bp.delete("/faults")
def clear_faults() -> Response:
    """Drop every pending fault."""
    _state().clear_faults()
    return _ok({"cleared": True})


@control_bp.post("/objects/<obj>/fields")
def define_field(obj: str) -> Response:
    """Define a custom field {name: "X__c", type, label, length, external_id, unique, required,
    picklist_values}; describe, SOQL and writes then know it."""
    return _ok(_state().define_custom_field(obj, _payload()), 201)


@control_bp.get("/objects/<obj>/fields")
def list_fields(obj: str) -> Response:
    """The custom fields defined on an object."""
    state = _state()
    with state.lock:
        return _ok(list(state.custom_field_defs[state.resolve_object(obj)].values()))


@control_bp.get("/records/<obj>")
def list_records(obj: str) -> Response:
    """Every record of an object (?include_deleted=0 for live ones only)."""
    include_deleted = request.args.get("include_deleted", "1") not in ("0", "false")
    return _ok({"records": _state().all_records(obj, include_deleted)})


@control_bp.post("/records/<obj>")
def create_record(obj: str) -> Response:
    """Create one record from a JSON object of fields."""
    return _ok({"id": _state().create_record(obj, _payload())}, 201)


@control_bp.post("/records/<obj>/seed")
def seed(obj: str) -> Response:
    """Create {count} records, {per_timestamp} per SystemModstamp, from {start}, with {fields}."""
    data = _payload()
    start = soql.parse_datetime(data["start"]) if data.get("start") else None
    ids = _state().seed(
        obj,
        int(data.get("count", 1)),
        per_timestamp=int(data.get("per_timestamp", 1)),
        fields=data.get("fields"),
        start=start,
    )
    return _ok({"ids": ids}, 201)


@control_bp.post("/records/<obj>/modify")
def modify(obj: str) -> Response:
    """Update {ids} with {fields}, optionally at {system_modstamp}."""
    data = _payload()
    state = _state()
    stamp = soql.parse_datetime(data["system_modstamp"]) if data.get("system_modstamp") else None
    with state.lock:
        for record_id in data.get("ids", []):
            state.update_record(obj, record_id, data.get("fields", {}), stamp=stamp)
    return _ok({"modified": len(data.get("ids", []))})


@control_bp.post("/records/<obj>/delete")
def delete(obj: str) -> Response:
    """Delete {ids}, optionally at {system_modstamp}."""
    data = _payload()
    state = _state()
    stamp = soql.parse_datetime(data["system_modstamp"]) if data.get("system_modstamp") else None
    with state.lock:
        for record_id in data.get("ids", []):
            state.delete_record(obj, record_id, stamp=stamp)
    return _ok({"deleted": len(data.get("ids", []))})


@control_bp.get("/log")
def get_log() -> Response:
    """The request log (?limit=N), secrets redacted."""
    limit = request.args.get("limit", type=int)
    return _ok(_state().get_log(limit))


@control_bp.delete("/log")
def clear_log() -> Response:
    """Empty the request log."""
    _state().clear_log()
    return _ok({"cleared": True})


@control_bp.get("/counters")
def counters() -> Response:
    """Grants, rejections, API calls and peak concurrency since the last reset."""
    return _ok(_state().get_counters())


@control_bp.post("/counters/reset")
def reset_counters() -> Response:
    """Zero the counters."""
    _state().reset_counters()
    return _ok(_state().get_counters())
