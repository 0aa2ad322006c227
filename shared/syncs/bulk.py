"""The Bulk API 2.0 path of a sync: one `queryAll` job, polled, its CSV read by Sforce-Locator.

A job is created with the same cursor WHERE as REST (without ORDER BY: Bulk API 2.0 promises
no order). Each results page is applied in its own transaction like a REST page, and the same
transaction saves `progress.bulk` = {job_id, locator of the next page, the largest
(SystemModstamp, Id) seen}: a crashed run continues the same job at the saved locator. Because
results are unordered, the sync's cursor moves only when the last page is applied (to the
largest pair seen); a run cancelled in the middle leaves the cursor where it was, and the next
run's new job re-reads what this one applied, which `store` counts as unchanged.

A results page is parsed while it streams in and applied in chunks of `CHUNK_RECORDS`, each
in its own transaction that also saves how many of the page's records are applied
(`progress.bulk.offset`); a crashed run re-requests the page at the saved locator and passes
over that many, so memory holds one chunk however big a page is, and nothing is applied twice.

CSV has no types, so each value is converted by the object's `describe` to what the REST API
returns (null for an empty cell, booleans, numbers, datetimes as `…+0000`), and a record looks
the same whichever path fetched it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from shared.salesforce import errors

POLL_FIRST = 0.5
POLL_CAP = 10.0
POLL_GIVE_UP = 3600.0
PAGE_RECORDS = 50000
# Records applied per transaction within a results page (a REST page is 2,000).
CHUNK_RECORDS = 5000
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


class StreamingSession(requests.Session):
    """A requests session whose responses are streamed: a results body is read from the socket
    as it is parsed, never held whole (`SalesforceClient(http=StreamingSession())`)."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("stream", True)
        return super().request(method, url, *args, **kwargs)


def csv_lines(response: requests.Response, chunk_bytes: int = 64 * 1024) -> Iterator[str]:
    """The body's lines, decoded, with their line endings, read `chunk_bytes` at a time.

    Split on LF only and kept, so csv.reader sees exactly what a file opened with newline=""
    gives it: a quoted value with CR, LF or CRLF inside spans lines and is put back together,
    and CRLF record ends are read as ends. UTF-8 never has a LF byte inside a character, so
    each line decodes on its own.
    """
    encoding = response.encoding or "utf-8"
    if encoding.lower() in ("iso-8859-1", "latin-1"):  # requests' default for text/* without a
        encoding = "utf-8"  # charset; Salesforce's CSV is UTF-8
    pending = b""
    for block in response.iter_content(chunk_size=chunk_bytes):
        if not block:
            continue
        pending += block
        end = pending.rfind(b"\n")
        if end < 0:
            continue
        complete, pending = pending[: end + 1], pending[end + 1 :]
        yield from _lf_lines(complete.decode(encoding))
    if pending:
        yield pending.decode(encoding)


def _lf_lines(text: str) -> Iterator[str]:
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            if start < len(text):
                yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


@dataclass
class Chunk:
    """Up to `CHUNK_RECORDS` converted records of one results page.

    `offset` is the number of the page's records read up to and including this chunk;
    `last` marks the page's final chunk, and `locator` is the next page's (None at the end).
    """

    records: list[dict[str, Any]]
    locator: str | None
    offset: int
    last: bool


def result_pages(
    client: Any,
    job_id: str,
    locator: str | None,
    types: dict[str, str],
    skip: int = 0,
    chunk_records: int | None = None,
) -> Iterator[Chunk]:
    """The job's results from the page at `locator`, as chunks, parsed while they stream in.

    Each results page is one GET whose CSV is read incrementally (`csv_lines` into csv.reader)
    and handed out `chunk_records` records at a time, so memory holds one chunk, not one page
    (a page may hold 50,000 records or more). The first `skip` records of the first page are
    passed over: those a crashed run already applied (results at one locator do not change).
    """
    size = chunk_records or CHUNK_RECORDS
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
        following = response.headers.get("Sforce-Locator")
        locator = None if not following or following == "null" else following
        try:
            reader = csv.reader(csv_lines(response))
            header = next(reader, None) or []
            kinds = [types.get(name, "string") for name in header]
            records: list[dict[str, Any]] = []
            offset = 0
            for row in reader:
                if not row:
                    continue
                offset += 1
                if offset <= skip:
                    continue
                records.append(
                    {
                        name: convert(value, kind)
                        for name, kind, value in zip(header, kinds, row, strict=False)
                    }
                )
                if len(records) >= size:
                    yield Chunk(records, locator, offset, last=False)
                    records = []
        finally:
            response.close()
        yield Chunk(records, locator, offset, last=True)
        skip = 0
        if locator is None:
            return
