"""Syncs API: define syncs (checked against describe), read them, run them now.

Bodies are validated by the pydantic models of `shared.syncs.definitions` (the same models
`/openapi.json` shows), then checked against the database and the account's describe with
every problem listed and nothing saved.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select

from shared import syncs
from shared.models import Sync
from shared.syncs.definitions import SyncBody, SyncPatch

from ..db import db, runtime
from . import api
from .contract import Body, Reply, operation
from .errors import ApiError, get_or_404, json_body, validation_error


class SyncOut(Reply):
    id: int
    name: str
    account_id: int
    object: str
    fields: list[str]
    cron: str | None
    every_seconds: int | None
    timezone: str
    enabled: bool
    api: str
    bulk_threshold: int
    lookback_seconds: int
    on_change: str | None
    cursor: dict[str, Any] | None = Field(description="{system_modstamp, id} of the last record")
    records: dict[str, int] = Field(description="{total, deleted}")
    last_run: dict[str, Any] | None = Field(description="{id, status, at, counts}")
    running: dict[str, Any] | None = Field(description="the active run's id, status and progress")
    next_run_at: str | None
    created_at: str | None
    updated_at: str | None


class SyncList(Reply):
    syncs: list[SyncOut]


class RunRequest(Body):
    full: bool = Field(False, description="backfill from the start instead of the cursor")


class RunQueued(Reply):
    id: int
    status: str


def _describe(account_id: int, obj: str) -> dict[str, str] | None:
    return syncs.describe_fields(runtime(), account_id, obj)


def _enqueue(run_id: int) -> None:
    from worker.tasks.runs import enqueue

    enqueue(run_id)


def _definition(model: type[Any]) -> Any:
    """The raw JSON object, for `shared.syncs` to check against the database and describe.

    The registry has already refused a body of the wrong shape (422 listing every problem, the
    same models), so the document and the server agree on what a valid body is."""
    return json_body()


@operation(api, "POST", "/syncs", "Define a sync", body=SyncBody, response=SyncOut, status=201)
def create_sync(*, body: SyncBody) -> Any:
    session = db()
    body = _definition(SyncBody)
    session.commit()  # no transaction stays open while Salesforce answers describe (SQLite)
    try:
        sync = syncs.create_sync(session, body, _describe)
    except syncs.DefinitionInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return syncs.sync_to_dict(session, sync)


@operation(api, "GET", "/syncs", "List syncs", response=SyncList)
def list_syncs() -> Any:
    session = db()
    rows = session.scalars(select(Sync).order_by(Sync.name))
    return {"syncs": [syncs.sync_to_dict(session, s) for s in rows]}


@operation(
    api, "GET", "/syncs/<int:id>", "One sync: cursor, counts, last run, progress", response=SyncOut
)
def get_sync(id: int) -> Any:  # noqa: A002 - SPEC's /syncs/<id>
    return syncs.sync_to_dict(db(), get_or_404(Sync, id, f"sync {id}"))


@operation(api, "PATCH", "/syncs/<int:id>", "Change a sync", body=SyncPatch, response=SyncOut)
def patch_sync(id: int, *, body: SyncPatch) -> Any:  # noqa: A002
    session = db()
    sync = get_or_404(Sync, id, f"sync {id}")
    body = _definition(SyncPatch)
    try:
        syncs.update_sync(session, sync, body, _describe)
    except syncs.DefinitionInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return syncs.sync_to_dict(session, sync)


@operation(
    api,
    "DELETE",
    "/syncs/<int:id>",
    "Delete a sync (its records stay); 409 while it runs",
    status=204,
    errors=[409],
)
def delete_sync(id: int) -> Any:  # noqa: A002
    session = db()
    sync = get_or_404(Sync, id, f"sync {id}")
    running = syncs.active_run(session, id)
    if running is not None:
        raise ApiError(409, "sync_running", "cancel the running sync first", {"run_id": running.id})
    session.delete(sync)
    session.commit()
    return None


@operation(
    api,
    "POST",
    "/syncs/<int:id>/runs",
    "Run the sync now; 409 with error.details.run_id when it is already running",
    body=RunRequest,
    body_required=False,
    response=RunQueued,
    status=202,
    errors=[409],
)
def run_sync(id: int, *, body: RunRequest) -> Any:  # noqa: A002
    session = db()
    get_or_404(Sync, id, f"sync {id}")
    try:
        run = syncs.start_sync_run(session, id, full=body.full)
    except syncs.SyncRunning as exc:
        session.rollback()
        raise ApiError(
            409, "sync_running", f"sync {id} is already running", {"run_id": exc.run_id}
        ) from None
    session.commit()
    _enqueue(run.id)
    return {"id": run.id, "status": run.status}
