"""Records API: synced records of one object, oldest local change first, keyset-paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from shared.syncs import records

from ..db import db
from . import api
from .contract import Query, Reply, operation

MAX_LIMIT = 1000


class RecordFilter(Query):
    account_id: int | None = Field(None, ge=1, le=2**31 - 1)
    sync_id: int | None = Field(None, ge=1, le=2**31 - 1)
    # Text parsed by datetime.fromisoformat, not pydantic's datetime: that one also takes a
    # bare number as a Unix time, which the document's `date-time` format does not allow.
    changed_after: str | None = Field(
        None, description="ISO 8601 with its offset", json_schema_extra={"format": "date-time"}
    )
    include_deleted: bool = False
    id: str | None = Field(None, min_length=1, max_length=18, description="one Salesforce Id")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        None, pattern=r"^c[0-9]{1,18}$", description="next_cursor of the previous page"
    )

    @field_validator("cursor")
    @classmethod
    def _ours(cls, value: str | None) -> str | None:
        if value is not None and records.decode_cursor(value) is None:
            raise ValueError("not a cursor this API returned")
        return value

    @field_validator("changed_after")
    @classmethod
    def _aware(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 time such as 2026-12-01T09:00:00Z") from None
        if parsed.tzinfo is None:
            raise ValueError("give the time with its offset (Z or +01:00)")
        return value


class RecordOut(Reply):
    id: str
    object: str
    account_id: int
    sync_id: int | None
    fields: dict[str, Any]
    system_modstamp: str | None
    is_deleted: bool
    deleted_at: str | None
    first_seen_at: str | None
    last_changed_at: str | None
    last_change: str
    change_seq: int


class RecordPage(Reply):
    records: list[RecordOut]
    next_cursor: str | None


@operation(
    api,
    "GET",
    "/records/<obj>",
    "Synced records, oldest local change first",
    description="A record changed while you page takes a new change number and comes again "
    "on a later page, so paging to the end never misses a change.",
    query=RecordFilter,
    response=RecordPage,
)
def list_records(obj: str, *, query: RecordFilter) -> Any:
    after = records.decode_cursor(query.cursor) if query.cursor else None
    page, next_cursor = records.records_page(
        db(),
        obj,
        account_id=query.account_id,
        sync_id=query.sync_id,
        changed_after=datetime.fromisoformat(query.changed_after) if query.changed_after else None,
        include_deleted=query.include_deleted,
        record_id=query.id,
        after_seq=after,
        limit=query.limit,
    )
    return {"records": [records.record_to_dict(r) for r in page], "next_cursor": next_cursor}
