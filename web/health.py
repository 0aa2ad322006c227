"""Liveness and readiness probes (public)."""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import text

from shared.config import UP_STATUS_FILE

from .db import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is up; checks nothing else, so an orchestrator never restarts us for Redis."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    """Database and Redis reachable; 503 naming whichever is not."""
    checks: dict[str, str] = {}
    rt = runtime()
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"unreachable: {type(exc).__name__}: {exc}"[:200]
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["message"] = f"not ready: {' and '.join(failing)} unreachable"
    processes = _up_processes(rt.settings.instance_dir / UP_STATUS_FILE)
    if processes is not None:
        body["processes"] = processes  # informational: a restarting worker is not "not ready"
    response = jsonify(body)
    response.status_code = 503 if failing else 200
    return response


def _up_processes(path: Any) -> dict[str, Any] | None:
    """The children of a running `forcebot up` on this instance (state, pid, restarts)."""
    try:
        status = json.loads(path.read_text())
        os.kill(int(status["supervisor_pid"]), 0)  # a file left by a crashed `up` is ignored
        return dict(status["processes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
