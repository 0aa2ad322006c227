"""SOQL subset, paging with nextRecordsUrl and batchSize, queryAll and deletions."""

from __future__ import annotations

import pytest
from simhelpers import API

from simulator import soql
from simulator.state import SimState


@pytest.fixture
def people(control):
    rows = [
        {"FirstName": "Ann", "LastName": "O'Brien", "Email": "ann@example.com"},
        {"FirstName": "Bob", "LastName": "Back\\slash", "Email": "bob@example.com"},
        {"FirstName": "Cy", "LastName": "Smith", "Email": None},
        {"FirstName": "Di", "LastName": "smithers", "Email": "di@example.org",
         "HasOptedOutOfEmail": True},
        {"FirstName": "Ed", "LastName": "Jones", "Email": "ed@example.org",
         "Birthdate": "1990-05-01"},
    ]  # fmt: skip
    return [control.create_record("Contact", row) for row in rows]


def _q(rest, soql_text: str, path: str = "query", **kw):
    return rest("GET", f"{API}/{path}", params={"q": soql_text}, **kw)


def _names(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["FirstName"] for r in resp.json()["records"]]


def test_query_response_shape(rest, people):
    resp = _q(rest, "SELECT Id, FirstName, Email FROM Contact WHERE FirstName = 'Ann'")
    body = resp.json()
    assert body["totalSize"] == 1 and body["done"] is True and "nextRecordsUrl" not in body
    record = body["records"][0]
    assert list(record) == ["attributes", "Id", "FirstName", "Email"]
    assert record["attributes"] == {
        "type": "Contact",
        "url": f"{API}/sobjects/Contact/{people[0]}",
    }


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LastName = 'O\\'Brien'", ["Ann"]),
        ("LastName = 'Back\\\\slash'", ["Bob"]),
        ("LastName = 'smith'", ["Cy"]),  # text compares case-insensitively
        ("LastName != 'Smith'", ["Ann", "Bob", "Di", "Ed"]),
        ("LastName <> 'Smith'", ["Ann", "Bob", "Di", "Ed"]),
        ("LastName LIKE 'smi%'", ["Cy", "Di"]),
        ("LastName LIKE '_ones'", ["Ed"]),
        ("FirstName IN ('Ann', 'Ed', 'Zed')", ["Ann", "Ed"]),
        ("FirstName NOT IN ('Ann', 'Ed')", ["Bob", "Cy", "Di"]),
        ("Email = null", ["Cy"]),
        ("Email != null AND Email LIKE '%.org'", ["Di", "Ed"]),
        ("HasOptedOutOfEmail = true", ["Di"]),
        ("HasOptedOutOfEmail = FALSE AND FirstName < 'C'", ["Ann", "Bob"]),
        ("FirstName >= 'Cy' AND FirstName <= 'Di'", ["Cy", "Di"]),
        ("FirstName > 'Di'", ["Ed"]),
        ("(FirstName = 'Ann' OR FirstName = 'Bob') AND NOT Email LIKE 'bob%'", ["Ann"]),
        ("FirstName = 'Ann' OR FirstName = 'Bob' AND Email LIKE 'zzz%'", ["Ann"]),
        ("NOT (FirstName = 'Ann' OR FirstName = 'Bob')", ["Cy", "Di", "Ed"]),
        ("Birthdate > 1990-01-01", ["Ed"]),
        ("CreatedDate > 2000-01-01T00:00:00Z", ["Ann", "Bob", "Cy", "Di", "Ed"]),
        ("CreatedDate < 2000-01-01T00:00:00.000+0000", []),
    ],
)
def test_where_operators(rest, people, where, expected):
    resp = _q(rest, f"SELECT FirstName FROM Contact WHERE {where} ORDER BY FirstName")
    assert _names(resp) == expected


def test_order_by_several_fields_and_limit(rest, control):
    for first, last in [("B", "X"), ("A", "Y"), ("A", "X"), ("C", None)]:
        control.create_record("Lead", {"FirstName": first, "LastName": last or "Z",
                                       "Company": "Co"})  # fmt: skip
    resp = _q(rest, "SELECT FirstName, LastName FROM Lead ORDER BY FirstName DESC, LastName ASC")
    rows = [(r["FirstName"], r["LastName"]) for r in resp.json()["records"]]
    assert rows == [("C", "Z"), ("B", "X"), ("A", "X"), ("A", "Y")]
    resp = _q(rest, "select FirstName from lead order by LastName, FirstName limit 2")
    assert [r["FirstName"] for r in resp.json()["records"]] == ["A", "B"]
    assert resp.json()["totalSize"] == 2


def test_count(rest, people):
    body = _q(rest, "SELECT COUNT() FROM Contact WHERE Email LIKE '%example.org'").json()
    assert body == {"totalSize": 2, "done": True, "records": []}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE LastName = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE (LastName = 'x'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact extra", "MALFORMED_QUERY"),
        ("SELECT Bogus FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE Bogus = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Nothing", "INVALID_TYPE"),
    ],
)
def test_bad_soql(rest, text, code):
    resp = _q(rest, text)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code


def test_soql_parser_units():
    query = soql.parse("SELECT Id FROM Account WHERE Name = 'a\\'b' ORDER BY Name DESC LIMIT 3")
    assert query.limit == 3 and query.order_by[0].descending
    assert query.where.value == "a'b"
    assert soql.parse_datetime("2026-01-01T01:00:00.000+0100") == soql.parse_datetime(
        "2026-01-01T00:00:00Z"
    )
    with pytest.raises(soql.SoqlError):
        soql.parse("SELECT Id FROM Account WHERE Name = 'bad \\q escape'")


def test_paging_default_2000(rest, control):
    control.seed("Account", 2500)
    first = _q(rest, "SELECT Id, Name FROM Account").json()
    assert first["totalSize"] == 2500 and first["done"] is False
    assert len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith(f"{API}/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    second = rest("GET", first["nextRecordsUrl"]).json()
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert len(second["records"]) == 500
    ids = [r["Id"] for r in first["records"] + second["records"]]
    assert len(set(ids)) == 2500


@pytest.mark.parametrize(("asked", "page"), [(300, 300), (50, 200), (5000, 2000)])
def test_batch_size_header_is_clamped(rest, control, asked, page):
    control.seed("Account", 2100)
    headers = {"Sforce-Query-Options": f"batchSize={asked}"}
    body = _q(rest, "SELECT Id FROM Account", headers=headers).json()
    assert len(body["records"]) == page
    seen = len(body["records"])
    while not body["done"]:
        body = rest("GET", body["nextRecordsUrl"]).json()
        assert len(body["records"]) <= page
        seen += len(body["records"])
    assert seen == 2100


def test_invalid_locator(rest):
    resp = rest("GET", f"{API}/query/01gnope-2000")
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_includes_deleted(rest, control):
    ids = control.seed("Contact", 5)
    control.delete_records("Contact", ids[:2])
    live = _q(rest, "SELECT Id FROM Contact").json()
    assert live["totalSize"] == 3
    everything = _q(rest, "SELECT Id, IsDeleted FROM Contact ORDER BY Id", path="queryAll")
    records = everything.json()["records"]
    assert [r["Id"] for r in records] == ids
    assert [r["IsDeleted"] for r in records] == [True, True, False, False, False]
    deleted = _q(rest, "SELECT Id FROM Contact WHERE IsDeleted = true", path="queryAll").json()
    assert {r["Id"] for r in deleted["records"]} == set(ids[:2])


def test_seeded_timestamps_shared_and_cursor_query(rest, control):
    ids = control.seed("Contact", 9, per_timestamp=3, start="2026-01-01T00:00:00Z")
    rows = rest("GET", f"{API}/query", params={
        "q": "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp, Id"
    }).json()["records"]  # fmt: skip
    stamps = [r["SystemModstamp"] for r in rows]
    assert stamps[:3] == ["2026-01-01T00:00:00.000+0000"] * 3
    assert stamps[3:6] == ["2026-01-01T00:00:01.000+0000"] * 3
    assert [r["Id"] for r in rows] == ids
    # the (SystemModstamp, Id) cursor a sync uses
    cursor = (
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:01.000+0000 OR "
        f"(SystemModstamp = 2026-01-01T00:00:01.000+0000 AND Id > '{ids[4]}') "
        "ORDER BY SystemModstamp, Id"
    )
    after = [r["Id"] for r in _q(rest, cursor).json()["records"]]
    assert after == ids[5:]
    control.modify_records("Contact", ids[:1], {"Title": "Boss"})
    latest = _q(rest, "SELECT Id, Title FROM Contact ORDER BY SystemModstamp DESC LIMIT 1")
    assert latest.json()["records"][0] == {
        "attributes": latest.json()["records"][0]["attributes"],
        "Id": ids[0],
        "Title": "Boss",
    }


def test_state_is_usable_without_http():
    state = SimState()
    ids = state.seed("Account", 3)
    result = state.run_query("SELECT Id FROM Account ORDER BY Id DESC", False, 2000, "62.0")
    assert [r["Id"] for r in result["records"]] == list(reversed(ids))
