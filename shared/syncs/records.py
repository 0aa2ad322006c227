"""Keyset pages of synced records, oldest local change first.

The order is `change_seq`, which is committed in the order it is given out (see
`shared.models.syncs`): a client that pages with `next_cursor` never misses a committed change,
and a record changed after the client read it gets a higher number and is seen again later.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import SyncedRecord, isoformat

# Plain text, so that the API document can state the exact pattern: every string it allows is
# a cursor the server accepts (schemathesis checks that).
CURSOR_PATTERN = r"c([0-9]{1,18})"


def encode_cursor(seq: int) -> str:
    return f"c{seq}"


def decode_cursor(cursor: str) -> int | None:
    match = re.fullmatch(CURSOR_PATTERN, cursor)
    return int(match.group(1)) if match else None


def record_to_dict(row: SyncedRecord) -> dict[str, Any]:
    return {
        "id": row.record_id,
        "object": row.object,
        "account_id": row.account_id,
        "sync_id": row.sync_id,
        "fields": row.data,
        "system_modstamp": isoformat(row.system_modstamp),
        "is_deleted": row.is_deleted,
        "deleted_at": isoformat(row.deleted_at),
        "first_seen_at": isoformat(row.first_seen_at),
        "last_changed_at": isoformat(row.last_changed_at),
        "last_change": row.last_change,
        "change_seq": row.change_seq,
    }


def records_page(
    session: Session,
    obj: str,
    *,
    account_id: int | None = None,
    sync_id: int | None = None,
    changed_after: datetime | None = None,
    include_deleted: bool = False,
    record_id: str | None = None,
    after_seq: int | None = None,
    limit: int = 100,
) -> tuple[list[SyncedRecord], str | None]:
    query = select(SyncedRecord).where(SyncedRecord.object == obj)
    if account_id is not None:
        query = query.where(SyncedRecord.account_id == account_id)
    if sync_id is not None:
        query = query.where(SyncedRecord.sync_id == sync_id)
    if changed_after is not None:
        query = query.where(SyncedRecord.last_changed_at > changed_after)
    if not include_deleted:
        query = query.where(SyncedRecord.is_deleted.is_(False))
    if record_id:
        query = query.where(SyncedRecord.record_id == record_id)
    if after_seq is not None:
        query = query.where(SyncedRecord.change_seq > after_seq)
    rows = list(session.scalars(query.order_by(SyncedRecord.change_seq).limit(limit + 1)))
    page = rows[:limit]
    # The cursor is the last change number seen; at the end there is none to give.
    return page, encode_cursor(page[-1].change_seq) if len(rows) > limit else None
