"""Runs API: trigger a behavior, list and read runs, retry, replay and cancel them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from shared import runs
from shared.models import Run

from ..db import db, settings
from . import api
from .contract import Body, Query, Reply, operation
from .errors import ApiError, not_found, validation_error

MAX_LIMIT = 200
# The API's cursor is "r" and a run id below 2**31 (the id column's range), spelled out as a
# pattern so that every string the document allows is a cursor the server accepts.
CURSOR_PATTERN = (
    r"^r([0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]"
    r"|214748364[0-7])$"
)
Status = Literal[tuple(runs.STATUSES)]  # type: ignore[valid-type]
Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


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


class TriggerBody(Body):
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="checked against the behavior's `inputs:`; 422 lists every input that "
        "does not fit, e.g. `payload.email: required`. Its JSON Schema, generated from the "
        "inputs: GET /behaviors/{name}/payload.schema.json (or `payload_schema` in "
        "GET /behaviors/{name}).",
    )
    idempotency_key: Annotated[
        str | None,
        StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$"),
    ] = None


class Triggered(Reply):
    id: int
    status: Status
    created: bool


class Exchange(Reply):
    method: str
    url: str
    status: int | None
    duration_ms: int | None
    error: str | None


class StepOut(Reply):
    id: str
    action: str
    status: str
    attempt: int | None
    started_at: Time
    finished_at: Time
    request: str | None = Field(None, description="the last HTTP request, `METHOD URL`")
    response_status: int | None = None
    duration_ms: int | None = None
    http: list[Exchange] | None = Field(None, description="every HTTP exchange of the step")
    error: dict[str, Any] | None = None


class AttemptOut(Reply):
    number: int
    status: str
    worker: str | None
    started_at: Time
    finished_at: Time
    error: dict[str, Any] | None


class RunSummary(Reply):
    id: int
    behavior: str
    behavior_version: int | None
    status: Status
    trigger: str
    attempts: int
    max_attempts: int
    retries: int
    payload: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    idempotency_key: str | None
    replay_of: int | None
    schedule_id: int | None
    slot: Time = Field(description="a schedule run's slot (UTC)")
    sync_id: int | None = Field(
        description="the sync a sync run (or a change-triggered run) belongs to"
    )
    progress: dict[str, Any] | None = Field(
        None,
        description="sync runs: {pages, records, total_size, created, updated, deleted, "
        "unchanged, api, position}, written after every page",
    )
    next_attempt_at: Time
    wait_reason: str | None
    cancel_requested: bool
    dry_run: bool = Field(description="a dry run: reads were sent, writes were only recorded")
    finished_before_cancel: bool = Field(
        description="a cancel came during the last step; the run ended before it could stop"
    )
    current_step: str | None
    waits: list[dict[str, Any]]
    created_at: Time
    started_at: Time
    finished_at: Time


class RunOut(RunSummary):
    steps: list[StepOut]
    attempt_history: list[AttemptOut]


class RunPage(Reply):
    runs: list[RunSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class RunFilter(Query):
    behavior: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00]*$")
    status: Status | None = None
    schedule: int | None = Field(None, ge=0, le=2**31 - 1, description="a schedule's id")
    sync: int | None = Field(None, ge=0, le=2**31 - 1, description="a sync's id")
    trigger: str | None = Field(
        None, min_length=1, max_length=16, description="api, cli, schedule, sync, change, replay"
    )
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        None,
        pattern=CURSOR_PATTERN,
        description="next_cursor of the previous page (`r` and the id the page starts below)",
    )


@operation(
    api,
    "POST",
    "/behaviors/<name>/runs",
    "Queue a run of a behavior; the same idempotency_key returns the first run",
    description="`payload` is checked against the behavior's inputs: 422 lists every "
    "failure by path (`payload.email: required`). The body may be omitted (an empty payload).",
    body=TriggerBody,
    body_required=False,
    response=Triggered,
    status=202,
)
def trigger_run(name: str, *, body: TriggerBody) -> Any:
    session = db()
    try:
        run, created = runs.create_run(
            session,
            name,
            body.payload,
            trigger="api",
            idempotency_key=body.idempotency_key,
            default_max_attempts=settings().run_max_attempts,
        )
    except runs.PayloadInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    except runs.BehaviorNotFound:
        session.rollback()
        raise not_found(f"behavior {name!r}") from None
    session.commit()
    if created:
        _enqueue(run.id)
    return {"id": run.id, "status": run.status, "created": created}


@operation(
    api,
    "GET",
    "/runs",
    "Runs, newest first; pass next_cursor as cursor for the next page",
    description='A filter sent empty (`?status=`) is 422, not "no filter": leave it out.',
    query=RunFilter,
    response=RunPage,
)
def list_runs(*, query: RunFilter) -> Any:
    before = int(query.cursor[1:]) if query.cursor is not None else None
    page, more = runs.list_runs_page(
        db(),
        behavior=query.behavior,
        status=query.status,
        limit=query.limit,
        before_id=before,
        schedule_id=query.schedule,
        sync_id=query.sync,
        trigger=query.trigger,
    )
    return {
        "runs": [runs.run_to_dict(r, include_steps=False) for r in page],
        "next_cursor": f"r{page[-1].id}" if more else None,
    }


@operation(api, "GET", "/runs/<int:id>", "One run with its steps and attempts", response=RunOut)
def get_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return runs.run_to_dict(_load(id))


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
        # The request is fine; the behavior's inputs changed under the stored payload.
        session.rollback()
        raise ApiError(
            409, "conflict", "the original payload no longer fits the behavior", exc.problems
        ) from None
    except runs.BehaviorNotFound:
        session.rollback()
        raise ApiError(409, "conflict", "the run's behavior no longer exists") from None
    session.commit()
    if action in ("retry", "replay"):
        _enqueue(run.id)
    return runs.run_to_dict(_load(run.id))


@operation(api, "POST", "/runs/<int:id>/retry",
           "Queue a failed or cancelled run again (a new attempt, same payload)",
           response=RunOut, status=202, errors=(409,))  # fmt: skip
def retry_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "retry")


@operation(api, "POST", "/runs/<int:id>/cancel",
           "Cancel a queued or waiting run now, a running one at its next step",
           response=RunOut, errors=(409,))  # fmt: skip
def cancel_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "cancel")


@operation(api, "POST", "/runs/<int:id>/replay",
           "Start a new run of the same behavior from the same payload",
           response=RunOut, status=202, errors=(409,))  # fmt: skip
def replay_run(id: int) -> Any:  # noqa: A002 - SPEC's /runs/<id>
    return _change(id, "replay")
