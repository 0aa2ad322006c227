"""Write one page of fetched records into `synced_records`, inside the caller's transaction.

Per page: lock the object's change-number row, read the stored versions of the page's ids in
one query, decide per record (created / updated / deleted / stamp-only / unchanged), then write
with one statement each — an `INSERT … SELECT … ON CONFLICT DO UPDATE` of every change, an
`UPDATE … FROM` for records whose SystemModstamp moved while the synced fields stayed the same
and, with `on_change`, an `INSERT … SELECT … ON CONFLICT DO NOTHING` of the triggered runs —
each reading the page from a single JSON parameter (serialized once). Nothing loops over ORM
objects or statements, and the caller commits all of it together with the cursor and the
run's progress.

Guarantee: a page applied twice (a crash between fetch and commit, a lookback window, a resumed
run) changes nothing the second time — an identical record is "unchanged", and a run's
idempotency key `sync:<id>:<record Id>:<SystemModstamp>` already exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Integer, String, Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.models import RecordSequence, Run, SyncedRecord, utcnow
from shared.models.base import UTCDateTime
from shared.models.runs import QUEUED
from shared.models.syncs import CREATED, DELETED, UPDATED
from shared.schedules.dispatch import stamper

# Fields the cursor and the bookkeeping need; every sync selects them.
ALWAYS = ("Id", "SystemModstamp", "IsDeleted")
# Compared for changes: everything stored except the stamp itself.
NOT_COMPARED = frozenset({"SystemModstamp"})
READ_CHUNK = 1000
RECORDS = cast(Table, SyncedRecord.__table__)
SEQUENCES = cast(Table, RecordSequence.__table__)
RUNS = cast(Table, Run.__table__)


@dataclass
class OnChange:
    """What a triggered run needs: the behavior's name, version, attempts and account."""

    behavior_name: str
    behavior_version: int | None
    max_attempts: int
    account_id: int | None


@dataclass
class PageResult:
    records: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    total_delta: int = 0  # rows added to the table
    deleted_delta: int = 0  # change in the number of rows marked deleted
    queued_run_ids: list[int] = field(default_factory=list)


def parse_stamp(value: str) -> datetime:
    """A Salesforce datetime (2026-01-01T00:00:00.000+0000) as an aware datetime."""
    return datetime.fromisoformat(value)


def clean(record: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The synced fields of a fetched record (no `attributes`), in the order of `names`."""
    return {name: record.get(name) for name in names}


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (PostgreSQL and SQLite spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _stored(session: Session, account_id: int, obj: str, ids: list[str]) -> list[Any]:
    """The stored versions of these ids: one indexed lookup per id.

    On PostgreSQL the ids are one array parameter, each probed through a LATERAL subquery with
    LIMIT 1 (the unique key makes it exact), which the planner cannot turn into a join: a
    plain join with `unnest`, or `IN (...)` under a prepared generic plan, is planned from
    the table's statistics, and while a backfill grows the table faster than autovacuum
    analyzes it those say "one row", so the planner hashes every stored row of the object for
    each page — 250 ms a page at 100,000 rows, quadratic over a backfill (40 s for a page of
    20,000 in a 20,000-row table with `IN`). SQLite probes the index for `IN` itself.
    """
    columns = (
        SyncedRecord.id,
        SyncedRecord.record_id,
        SyncedRecord.data,
        SyncedRecord.is_deleted,
        SyncedRecord.system_modstamp,
    )
    scope = (SyncedRecord.account_id == account_id, SyncedRecord.object == obj)
    rows: list[Any] = []
    if session.get_bind().dialect.name == "postgresql":
        params = {"ids": ids, "account_id": account_id, "object": obj}
        return list(session.execute(_STORED_PG, params).all())
    for start in range(0, len(ids), READ_CHUNK):
        chunk = ids[start : start + READ_CHUNK]
        rows.extend(
            session.execute(select(*columns).where(*scope, SyncedRecord.record_id.in_(chunk))).all()
        )
    return rows


def lock_sequence(session: Session, obj: str) -> int:
    """Lock the object's change-number row until commit and return its value.

    Taken before anything is read, so writers of one object are serialised: change numbers
    are committed in the order they are given out, and the read-compare-write below cannot
    race another sync of the same object.
    """
    table = SEQUENCES
    stmt = _insert(session)(table).values(object=obj, value=0)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.object], set_={"value": table.c.value}
    ).returning(table.c.value)
    return int(session.execute(stmt).scalar_one())


def apply_page(
    session: Session,
    *,
    sync_id: int,
    account_id: int,
    obj: str,
    names: list[str],
    records: list[dict[str, Any]],
    on_change: OnChange | None = None,
) -> PageResult:
    """Upsert one page (already ordered by SystemModstamp, Id); see the module docstring."""
    result = PageResult(records=len(records))
    if not records:
        return result
    now = utcnow()
    text_of = stamper(session.get_bind().dialect)
    base = lock_sequence(session, obj)
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        by_id[record["Id"]] = clean(record, names)  # a repeated id: the later one wins
    stored = {row.record_id: row for row in _stored(session, account_id, obj, list(by_id))}

    changes: list[dict[str, Any]] = []
    stamp_only: list[dict[str, Any]] = []
    triggers: list[dict[str, Any]] = []
    seq = base
    for record_id, data in by_id.items():
        stamp = parse_stamp(data["SystemModstamp"])
        is_deleted = bool(data.get("IsDeleted"))
        old = stored.get(record_id)
        if old is None:
            kind = DELETED if is_deleted else CREATED
            changed = sorted(k for k in data if k not in NOT_COMPARED) if on_change else []
            result.total_delta += 1
            result.deleted_delta += int(is_deleted)
        else:
            changed = sorted(
                k for k in data if k not in NOT_COMPARED and (old.data or {}).get(k) != data[k]
            )
            if not changed:
                result.unchanged += 1
                if old.system_modstamp != stamp:
                    stamp_only.append({"id": old.id, "stamp": text_of(stamp)})
                continue
            if is_deleted and not old.is_deleted:
                kind = DELETED
                result.deleted_delta += 1
            else:
                kind = UPDATED
                result.deleted_delta -= int(old.is_deleted and not is_deleted)
        seq += 1
        setattr(result, kind, getattr(result, kind) + 1)
        changes.append(
            {
                "record_id": record_id,
                "system_modstamp": text_of(stamp),
                "is_deleted": is_deleted,
                "data": data,
                "last_change": kind,
                "change_seq": seq,
            }
        )
        if on_change is not None:
            triggers.append(
                {
                    "payload": {
                        "sync_id": sync_id,
                        "object": obj,
                        "change": kind,
                        "record": data,
                        "changed_fields": changed if kind != DELETED else ["IsDeleted"],
                    },
                    "idempotency_key": f"sync:{sync_id}:{record_id}:{data['SystemModstamp']}",
                }
            )

    postgres = session.get_bind().dialect.name == "postgresql"
    common = {"account_id": account_id, "sync_id": sync_id, "object": obj, "now": now}
    if changes:
        statement = _UPSERT_PG if postgres else _UPSERT_SQLITE
        session.execute(statement, {**common, "rows": json.dumps(changes)})
        session.execute(update(SEQUENCES).where(SEQUENCES.c.object == obj).values(value=seq))
    if stamp_only:
        statement = _STAMP_PG if postgres else _STAMP_SQLITE
        session.execute(statement, {"now": now, "rows": json.dumps(stamp_only)})
    if triggers:
        assert on_change is not None
        statement = _TRIGGER_PG if postgres else _TRIGGER_SQLITE
        params = {
            **common,
            "behavior_name": on_change.behavior_name,
            "behavior_version": on_change.behavior_version,
            "max_attempts": on_change.max_attempts,
            "account_id": on_change.account_id,
            "no": False,
            "rows": json.dumps(triggers),
        }
        result.queued_run_ids = list(session.execute(statement, params).scalars())
    return result


# Each write is one statement per page whatever its size: the page travels as one JSON
# parameter read back as rows (json_to_recordset on PostgreSQL, json_each on SQLite), so there
# is no per-row bind processing in SQLAlchemy nor per-row statements in the driver; the values
# common to the page (account, sync, object, now) are ordinary parameters. Column names are the
# models' (shared.models.syncs.SyncedRecord, shared.models.runs.Run).
def _rowset_sql(postgres: bool, columns: dict[str, str]) -> tuple[str, dict[str, str]]:
    """FROM clause and column expressions that read `:rows` as rows of `columns` (name: PG type)."""
    if postgres:
        spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        return f"json_to_recordset(CAST(:rows AS json)) AS v({spec})", {
            name: f"v.{name}" for name in columns
        }
    return "json_each(:rows)", {name: f"json_extract(value, '$.{name}')" for name in columns}


def _typed(sql: str) -> Any:
    types: dict[str, Any] = {"now": UTCDateTime(), "no": Boolean()}
    return text(sql).bindparams(
        *(
            bindparam(name, type_=kind)
            for name, kind in types.items()
            if re.search(rf":{name}\b", sql)
        )
    )


def _upsert(postgres: bool) -> Any:
    source, v = _rowset_sql(
        postgres,
        {
            "record_id": "text",
            "system_modstamp": "timestamptz",
            "is_deleted": "boolean",
            "data": "json",
            "last_change": "text",
            "change_seq": "bigint",
        },
    )
    updated = ", ".join(
        f"{name} = excluded.{name}"
        for name in (
            "sync_id",
            "system_modstamp",
            "is_deleted",
            "deleted_at",
            "data",
            "last_changed_at",
            "last_change",
            "change_seq",
            "synced_at",
        )
    )
    return _typed(
        "INSERT INTO synced_records (account_id, sync_id, object, record_id, system_modstamp, "
        "is_deleted, deleted_at, data, first_seen_at, last_changed_at, last_change, change_seq, "
        f"synced_at) SELECT :account_id, :sync_id, :object, {v['record_id']}, "
        f"{v['system_modstamp']}, {v['is_deleted']}, "
        f"CASE WHEN {v['is_deleted']} THEN {v['system_modstamp']} END, {v['data']}, :now, "
        f":now, {v['last_change']}, {v['change_seq']}, :now FROM {source} WHERE true "
        "ON CONFLICT (account_id, object, record_id) DO UPDATE SET " + updated
    )


def _stamp(postgres: bool) -> Any:
    source, v = _rowset_sql(postgres, {"id": "bigint", "stamp": "timestamptz"})
    return _typed(
        "UPDATE synced_records SET system_modstamp = s.stamp, synced_at = :now "
        f"FROM (SELECT {v['id']} AS id, {v['stamp']} AS stamp FROM {source}) AS s "
        "WHERE synced_records.id = s.id"
    )


def _trigger(postgres: bool) -> Any:
    source, v = _rowset_sql(postgres, {"payload": "json", "idempotency_key": "text"})
    return _typed(
        'INSERT INTO runs (behavior_name, behavior_version, status, "trigger", payload, '
        "idempotency_key, max_attempts, account_id, sync_id, created_at, queued_at, attempts, "
        f"retries, cancel_requested) SELECT :behavior_name, :behavior_version, '{QUEUED}', "
        f"'change', {v['payload']}, {v['idempotency_key']}, :max_attempts, :account_id, "
        f":sync_id, :now, :now, 0, 0, :no FROM {source} WHERE true "
        "ON CONFLICT (behavior_name, idempotency_key) DO NOTHING RETURNING id"
    )


_UPSERT_PG, _UPSERT_SQLITE = _upsert(True), _upsert(False)
_STAMP_PG, _STAMP_SQLITE = _stamp(True), _stamp(False)
_TRIGGER_PG, _TRIGGER_SQLITE = _trigger(True), _trigger(False)

_STORED_PG = text(
    "SELECT found.id, found.record_id, found.data, found.is_deleted, found.system_modstamp "
    "FROM unnest(CAST(:ids AS varchar[])) AS wanted(rid) CROSS JOIN LATERAL (SELECT id, "
    "record_id, data, is_deleted, system_modstamp FROM synced_records WHERE account_id = "
    ":account_id AND object = :object AND record_id = wanted.rid LIMIT 1) AS found"
).columns(
    id=Integer(),
    record_id=String(),
    data=JSON(),
    is_deleted=Boolean(),
    system_modstamp=UTCDateTime(),
)
