"""The Bulk API 2.0 path of a sync: one `queryAll` job, polled, its CSV read by Sforce-Locator.

A job is created with the same cursor WHERE as REST (without ORDER BY: Bulk API 2.0 promises
no order). Each results page is applied in its own transaction like a REST page, and the same
transaction saves `progress.bulk` = {job_id, locator of the next page, the largest
(SystemModstamp, Id) seen}: a crashed run continues the same job at the saved locator. Because
results are unordered, the sync's cursor moves only when the last page is applied (to the
largest pair seen); a run cancelled in the middle leaves the cursor where it was, and the next
run's new job re-reads what this one applied, which `store` counts as unchanged.

CSV has no types, so each value is converted by the object's `describe` to what the REST API
returns (null for an empty cell, booleans, numbers, datetimes as `…+0000`), and a record looks
the same whichever path fetched it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

from shared.salesforce import errors

POLL_FIRST = 0.5
POLL_CAP = 10.0
POLL_GIVE_UP = 3600.0
PAGE_RECORDS = 50000
NUMBERS = {"double", "currency", "percent"}


class Stopped(Exception):
    """A user asked to cancel while the job was being polled."""


def convert(value: str, ftype: str) -> Any:
    """One CSV cell as the REST API would give it."""
    if value == "":
        return None
    if ftype == "boolean":
        return value.lower() == "true"
    if ftype == "int":
        return int(value)
    if ftype in NUMBERS:
        return float(value)
    if ftype == "datetime" and value.endswith("Z"):
        return value[:-1] + "+0000"
    return value


def create_job(client: Any, soql: str) -> str:
    response = client.request(
        "POST",
        f"{client.base_path}/jobs/query",
        json={"operation": "queryAll", "query": soql, "contentType": "CSV"},
    )
    return str(response.json()["id"])


def wait_complete(
    client: Any,
    job_id: str,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll with doubling delays (0.5 s up to 10 s) until JobComplete; raise on Failed/Aborted."""
    delay, waited = POLL_FIRST, 0.0
    while True:
        info = client.request("GET", f"{client.base_path}/jobs/query/{job_id}").json()
        state = info.get("state")
        if state == "JobComplete":
            return dict(info)
        if state in ("Failed", "Aborted"):
            raise errors.SalesforceError(
                f"bulk job {job_id} {state}: {info.get('errorMessage') or 'no message'}",
                error_code="BULK_JOB_FAILED",
            )
        if should_stop():
            raise Stopped()
        if waited >= POLL_GIVE_UP:
            raise errors.SalesforceError(
                f"bulk job {job_id} not complete after {waited:.0f}s", error_code="BULK_TIMEOUT"
            )
        sleep(delay)
        waited += delay
        delay = min(delay * 2, POLL_CAP)


def result_pages(
    client: Any, job_id: str, locator: str | None, types: dict[str, str]
) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """(records of one results page, locator of the next page or None), page by page."""
    while True:
        params: dict[str, Any] = {"maxRecords": PAGE_RECORDS}
        if locator:
            params["locator"] = locator
        response = client.request(
            "GET",
            f"{client.base_path}/jobs/query/{job_id}/results",
            params=params,
            headers={"Accept": "text/csv"},
        )
        reader = csv.DictReader(io.StringIO(response.text))
        records = [
            {name: convert(value, types.get(name, "string")) for name, value in row.items()}
            for row in reader
        ]
        following = response.headers.get("Sforce-Locator")
        locator = None if not following or following == "null" else following
        yield records, locator
        if locator is None:
            return
