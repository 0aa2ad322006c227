"""The SOQL a sync sends: its fields, and the `(SystemModstamp, Id)` cursor exactly as SPEC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .store import ALWAYS

_ID = re.compile(r"[A-Za-z0-9]{0,18}")


def select_fields(fields: list[str]) -> list[str]:
    """Id, SystemModstamp and IsDeleted first, then the sync's own fields, each once."""
    names = list(ALWAYS)
    for name in fields:
        if name not in names:
            names.append(name)
    return names


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal with milliseconds (Salesforce keeps stamps to the ms)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def cursor_where(ts: datetime, record_id: str) -> str:
    """`SystemModstamp > :ts OR (SystemModstamp = :ts AND Id > :id)`."""
    if not _ID.fullmatch(record_id):
        raise ValueError(f"not a Salesforce Id: {record_id!r}")
    lit = soql_datetime(ts)
    return f"SystemModstamp > {lit} OR (SystemModstamp = {lit} AND Id > '{record_id}')"


def build_query(
    obj: str,
    fields: list[str],
    cursor: tuple[datetime, str] | None,
    *,
    count: bool = False,
    ordered: bool = True,
) -> str:
    """The page query (or `SELECT COUNT()` with the same cursor), ordered by the cursor
    unless `ordered` is false (Bulk API 2.0 jobs)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", obj):
        raise ValueError(f"not an object name: {obj!r}")
    head = "SELECT COUNT()" if count else "SELECT " + ", ".join(select_fields(fields))
    soql = f"{head} FROM {obj}"
    if cursor is not None:
        soql += " WHERE " + cursor_where(*cursor)
    if not count and ordered:
        soql += " ORDER BY SystemModstamp, Id"
    return soql
