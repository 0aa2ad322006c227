"""Runs API: trigger a behavior, list and read runs, retry, replay and cancel them."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from shared import runs
from shared.models import Run

from ..db import db, settings
from . import api
from .errors import ApiError, json_body, not_found, validation_error
from .openapi import document, schema

MAX_LIMIT = 200
RUN_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
BEHAVIOR_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _enqueue(run_id: int) -> None:
    from worker.tasks.runs import enqueue

    # The row is committed already (outbox): a broker failure only delays the run until the
    # reconciler sends it, so the client still gets its 202.
    enqueue(run_id)


def _load(run_id: int) -> Run:
    run = runs.load_run(db(), run_id)
    if run is None:
        raise not_found(f"run {run_id}")
    return run


@api.post("/behaviors/<name>/runs")
def trigger_run(name: str) -> Any:
    body = json_body() if request.data else {}
    unknown = sorted(set(body) - {"payload", "idempotency_key"})
    problems = [f"{key}: unknown field (expected payload, idempotency_key)" for key in unknown]
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        problems.append("idempotency_key: expected a non-empty string")
        key = None
    session = db()
    try:
        run, created = runs.create_run(
            session,
            name,
            body.get("payload", {}),
            trigger="api",
            idempotency_key=key,
            default_max_attempts=settings().run_max_attempts,
        )
        if problems:
            raise runs.PayloadInvalid([])
    except runs.PayloadInvalid as exc:
        session.rollback()
        raise validation_error(problems + exc.problems) from None
    except runs.BehaviorNotFound:
        session.rollback()
        raise not_found(f"behavior {name!r}") from None
    session.commit()
    if created:
        _enqueue(run.id)
    return jsonify({"id": run.id, "status": run.status, "created": created}), 202


RUN_SCHEMA = schema(
    "Run",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "behavior": {"type": "string"},
            "behavior_version": {"type": ["integer", "null"]},
            "status": {"type": "string", "enum": list(runs.STATUSES)},
            "trigger": {"type": "string"},
            "attempts": {"type": "integer"},
            "payload": {"type": "object"},
            "result": {},
            "error": {"type": ["object", "null"]},
            "idempotency_key": {"type": ["string", "null"]},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "wait_reason": {"type": ["string", "null"]},
            "waits": {"type": "array", "items": {"type": "object"}},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "action": {"type": "string"},
                        "status": {"type": "string"},
                        "attempt": {"type": "integer"},
                        "started_at": {"type": "string", "format": "date-time"},
                        "finished_at": {"type": ["string", "null"], "format": "date-time"},
                        "request": {"type": "string"},
                        "response_status": {"type": ["integer", "null"]},
                        "error": {"type": "object"},
                    },
                },
            },
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
document(
    "/behaviors/{name}/runs",
    "POST",
    "Queue a run of a behavior; the same idempotency_key returns the first run",
    request={
        "type": "object",
        "properties": {
            "payload": {"type": "object"},
            "idempotency_key": {"type": "string", "maxLength": 255},
        },
    },
    response={
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string"},
            "created": {"type": "boolean"},
        },
    },
    status=202,
    params=BEHAVIOR_NAME,
)


@api.get("/runs")
def list_runs() -> Any:
    problems = []
    status = request.args.get("status") or None
    if status is not None and status not in runs.STATUSES:
        problems.append(f"status: expected one of {', '.join(runs.STATUSES)}")
    try:
        limit = int(request.args.get("limit", 50))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        problems.append(f"limit: expected a whole number from 1 to {MAX_LIMIT}")
        limit = 50
    behavior = request.args.get("behavior") or None
    if behavior is not None and "\x00" in behavior:
        problems.append("behavior: must not contain NUL characters")
    before = None
    cursor = request.args.get("cursor")
    if cursor:
        before = runs.decode_cursor(cursor)
        if before is None:
            problems.append("cursor: not a cursor this API returned")
    if problems:
        raise validation_error(problems, "bad query parameters")
    page, next_cursor = runs.list_runs_page(
        db(), behavior=behavior, status=status, limit=limit, before_id=before
    )
    return jsonify(
        {
            "runs": [runs.run_to_dict(r, include_steps=False) for r in page],
            "next_cursor": next_cursor,
        }
    )


document(
    "/runs",
    "GET",
    "Runs, newest first; pass next_cursor as cursor for the next page",
    params=[
        {"name": "behavior", "in": "query", "schema": {"type": "string"}},
        {
            "name": "status",
            "in": "query",
            "schema": {"type": "string", "enum": list(runs.STATUSES)},
        },
        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": MAX_LIMIT}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    ],
    response={
        "type": "object",
        "properties": {
            "runs": {"type": "array", "items": RUN_SCHEMA},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
)


@api.get("/runs/<int:id>")
def get_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return jsonify(runs.run_to_dict(_load(id)))


document(
    "/runs/{id}",
    "GET",
    "One run with its steps and attempts",
    response=RUN_SCHEMA,
    params=RUN_ID,
)


def _change(run_id: int, action: str) -> Any:
    session = db()
    try:
        if action == "retry":
            run = runs.retry_run(session, run_id)
        elif action == "cancel":
            run = runs.cancel_run(session, run_id)
        else:
            run = runs.replay_run(session, run_id, default_max_attempts=settings().run_max_attempts)
    except LookupError:
        session.rollback()
        raise not_found(f"run {run_id}") from None
    except runs.RunStateError as exc:
        session.rollback()
        raise ApiError(409, "conflict", str(exc)) from None
    except runs.PayloadInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems, "the original payload no longer fits") from None
    except runs.BehaviorNotFound:
        session.rollback()
        raise ApiError(409, "conflict", "the run's behavior no longer exists") from None
    session.commit()
    if action in ("retry", "replay"):
        _enqueue(run.id)
    status = 202 if action in ("retry", "replay") else 200
    return jsonify(runs.run_to_dict(_load(run.id))), status


@api.post("/runs/<int:id>/retry")
def retry_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "retry")


@api.post("/runs/<int:id>/cancel")
def cancel_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "cancel")


@api.post("/runs/<int:id>/replay")
def replay_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "replay")


document(
    "/runs/{id}/retry",
    "POST",
    "Queue a failed or cancelled run again (a new attempt, same payload)",
    response=RUN_SCHEMA,
    status=202,
    params=RUN_ID,
)
document(
    "/runs/{id}/cancel",
    "POST",
    "Cancel a queued or waiting run now, a running one at its next step",
    response=RUN_SCHEMA,
    params=RUN_ID,
)
document(
    "/runs/{id}/replay",
    "POST",
    "Start a new run of the same behavior from the same payload",
    response=RUN_SCHEMA,
    status=202,
    params=RUN_ID,
)
