"""Bulk results are parsed while they stream in, and handed out in bounded chunks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import requests

from shared.syncs import bulk

HEADER = "Id,SystemModstamp,IsDeleted,LastName,Email\r\n"


def _row(n: int) -> str:
    return f"003{n:015d},2026-01-01T00:00:00.000Z,false,Contact {n},c{n}@example.com\r\n"


class _Counting(io.RawIOBase):
    """A body produced lazily, counting how many bytes the reader has taken so far."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self.parts, self.pending, self.taken = parts, b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            try:
                self.pending = next(self.parts)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        self.taken += size
        return size


def _response(raw: io.RawIOBase, locator: str = "null") -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.raw = raw
    response.headers["Sforce-Locator"] = locator
    response.headers["Content-Type"] = "text/csv"
    return response


class _Client:
    base_path = "/services/data/v62.0"

    def __init__(self, pages: list[requests.Response]) -> None:
        self.pages = pages
        self.params: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.params.append(kwargs["params"])
        return self.pages.pop(0)


def test_a_big_page_is_read_incrementally_and_chunked():
    count = 60_000
    raw = _Counting(iter([HEADER.encode()] + [_row(n).encode() for n in range(count)]))
    total = len(HEADER) + sum(len(_row(n)) for n in range(count))
    chunks = bulk.result_pages(_Client([_response(raw)]), "750x", None, {}, chunk_records=1000)
    first = next(chunks)
    # The first chunk came after reading a small part of the body, not all of it.
    assert len(first.records) == 1000 and not first.last
    assert raw.taken < total // 20, (raw.taken, total)
    sizes = [len(first.records)] + [len(c.records) for c in chunks]
    assert max(sizes) <= 1000 and sum(sizes) == count
    assert raw.taken == total


def test_quoted_newlines_commas_crlf_and_utf8_split_across_reads():
    body = (
        "Id,Description,LastName,IsDeleted\r\n"
        '003A,"line one\r\nline two, with a comma",Zoë,false\r\n'
        '003B,"he said ""hi""\nthen left",Ünal,true\r\n'
        "003C,,\u00e9t\u00e9,false\r\n"
    ).encode()
    # One byte per read: every multi-byte character and CRLF is split between reads.
    raw = _Counting(iter([body[i : i + 1] for i in range(len(body))]))
    types = {"IsDeleted": "boolean", "Description": "textarea"}
    (chunk,) = list(bulk.result_pages(_Client([_response(raw)]), "750x", None, types))
    expected = [
        {k: bulk.convert(v, types.get(k, "string")) for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(body.decode(), newline=""))
    ]
    assert chunk.records == expected
    assert chunk.records[0]["Description"] == "line one\r\nline two, with a comma"
    assert chunk.records[1]["Description"] == 'he said "hi"\nthen left'
    assert chunk.records[2]["Description"] is None and chunk.records[1]["IsDeleted"] is True
    assert chunk.last and chunk.locator is None


def test_a_resumed_page_passes_over_what_was_applied_then_follows_the_locator():
    first = "".join([HEADER] + [_row(n) for n in range(10)]).encode()
    second = "".join([HEADER] + [_row(n) for n in range(10, 15)]).encode()
    client = _Client(
        [_response(_Counting(iter([first])), "LOC2"), _response(_Counting(iter([second])))]
    )
    chunks = list(bulk.result_pages(client, "750x", "LOC1", {}, skip=4, chunk_records=3))
    ids = [r["Id"][-2:] for c in chunks for r in c.records]
    assert ids == [f"{n:02d}" for n in range(4, 15)]
    assert [(c.offset, c.last, c.locator) for c in chunks] == [
        (7, False, "LOC2"),
        (10, False, "LOC2"),
        (10, True, "LOC2"),
        (3, False, None),
        (5, True, None),
    ]
    assert [p.get("locator") for p in client.params] == ["LOC1", "LOC2"]
