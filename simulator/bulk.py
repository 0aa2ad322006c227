"""Bulk API 2.0 query jobs: create, poll, read CSV results page by page with Sforce-Locator.

A job takes a snapshot of its query's rows when created (through the same SOQL engine as
REST; Bulk API 2.0 promises no order, so clients must not rely on one), reports `InProgress` for
`settings["bulk_polls_in_progress"]` polls, then `JobComplete`. Results come as CSV the way
Salesforce writes them: a header row, empty for null, `true`/`false`, numbers as written,
datetimes as `2026-01-01T00:00:00.000Z`. The jobs live beside the simulator's state, keyed by
the state object, so this module adds no fields to `SimState`.
"""

from __future__ import annotations

import csv
import io
import itertools
import weakref
from typing import Any

from simulator import soql
from simulator.errors import SfError
from simulator.ids import random_chars

DEFAULT_POLLS_IN_PROGRESS = 1
_JOBS: weakref.WeakKeyDictionary[Any, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()
_SEQ = itertools.count(1)


def _jobs(state: Any) -> dict[str, dict[str, Any]]:
    return _JOBS.setdefault(state, {})


def reset(state: Any) -> None:
    _jobs(state).clear()


def create_job(state: Any, body: dict[str, Any], version: str) -> dict[str, Any]:
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise SfError(400, "INVALIDJOB", "operation must be query or queryAll")
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise SfError(400, "INVALIDJOB", "query is required")
    try:
        parsed = soql.parse(text)
    except soql.SoqlError as exc:
        raise SfError(400, exc.error_code, exc.message) from None
    if parsed.count_only:
        raise SfError(400, "INVALIDJOB", "COUNT() is not supported by Bulk API 2.0 queries")
    page = state.run_query(text, operation == "queryAll", 10**9, version)
    with state.lock:
        obj = state.resolve_object(parsed.sobject)
        names = [state.field_type(obj, f)[0] for f in parsed.fields]
        types = {n: state.field_type(obj, n)[1] for n in names}
        job_id = "750" + f"{next(_SEQ):05d}" + random_chars(7)
        job = {
            "id": job_id,
            "operation": operation,
            "object": obj,
            "createdDate": state.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "_names": names,
            "_types": types,
            "_rows": page["records"],
            "_polls_left": int(
                state.settings.get("bulk_polls_in_progress", DEFAULT_POLLS_IN_PROGRESS)
            ),
        }
        _jobs(state)[job_id] = job
        return _public(job)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _get(state: Any, job_id: str) -> dict[str, Any]:
    job = _jobs(state).get(job_id)
    if job is None:
        raise SfError(404, "NOT_FOUND", f"Job {job_id} not found")
    return job


def job_info(state: Any, job_id: str) -> dict[str, Any]:
    with state.lock:
        job = _get(state, job_id)
        if job["state"] in ("UploadComplete", "InProgress"):
            if job["_polls_left"] > 0:
                job["_polls_left"] -= 1
                job["state"] = "InProgress"
            else:
                job["state"] = "JobComplete"
        info = _public(job)
        info["numberRecordsProcessed"] = len(job["_rows"]) if job["state"] == "JobComplete" else 0
        return info


def _cell(value: Any, ftype: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if ftype == "datetime" and isinstance(value, str) and value.endswith("+0000"):
        return value[:-5] + "Z"
    return str(value)


def results(
    state: Any, job_id: str, locator: str | None, max_records: int | None
) -> tuple[str, str, int]:
    """(CSV text, next locator or "null", number of records) of one results page."""
    with state.lock:
        job = _get(state, job_id)
        if job["state"] != "JobComplete":
            raise SfError(400, "INVALIDJOB", f"Job {job_id} is not complete")
        rows = job["_rows"]
        names, types = job["_names"], job["_types"]
    start = 0
    if locator:
        try:
            start = int(locator, 36)
        except ValueError:
            raise SfError(400, "INVALID_LOCATOR", "invalid locator") from None
    size = max_records or 50000
    cap = int(state.settings.get("bulk_page_records") or 0)
    if cap:
        size = min(size, cap)
    chunk = rows[start : start + size]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(names)
    for row in chunk:
        writer.writerow([_cell(row.get(n), types[n]) for n in names])
    end = start + len(chunk)
    next_locator = _b36(end) if end < len(rows) else "null"
    return out.getvalue(), next_locator, len(chunk)


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, r = divmod(n, 36)
        text = digits[r] + text
        if n == 0:
            return text
