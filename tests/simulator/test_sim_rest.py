"""The instance host: versions, sObjects, CRUD, upsert, errors, ids, datetimes, composite."""

from __future__ import annotations

import datetime as dt
import re

from simhelpers import API

from simulator import soql
from simulator.ids import checksum, is_valid_id, to18

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def test_checksum_algorithm():
    # chunk "00Q5G": Q (bit 2) + G (bit 4) = 20 -> "U"; "00000" -> "A"; "ABCde" -> 7 -> "H"
    assert checksum("00Q5G00000ABCde") == "UAH"
    assert to18("00Q5G00000ABCde") == "00Q5G00000ABCdeUAH"
    assert checksum("001000000000000") == "AAA"
    assert checksum("ZZZZZZZZZZZZZZZ") == "555"
    assert is_valid_id("00Q5G00000ABCdeUAH")
    assert not is_valid_id("00Q5G00000ABCdeAAA")


def test_versions_need_no_auth_and_do_not_count(oauth, control):
    resp = oauth.rest("GET", "/services/data/", None)
    assert resp.status_code == 200
    versions = resp.json()
    assert {"label", "url", "version"} <= set(versions[0])
    assert any(v["version"] == "62.0" and v["url"] == "/services/data/v62.0" for v in versions)
    assert control.counters()["api_calls"] == 0
    assert control.settings()["api_usage"] == 0


def test_rest_needs_a_session(oauth):
    for token in (None, "00Dbogus!token"):
        resp = oauth.rest("GET", f"{API}/sobjects", token)
        assert resp.status_code == 401
        assert resp.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


def test_sobjects_and_describe(rest):
    resp = rest("GET", f"{API}/sobjects")
    assert resp.status_code == 200
    prefixes = {o["name"]: o["keyPrefix"] for o in resp.json()["sobjects"]}
    assert prefixes == {
        "Account": "001",
        "Contact": "003",
        "Lead": "00Q",
        "Case": "500",
        "Opportunity": "006",
        "Task": "00T",
        "User": "005",
    }
    describe = rest("GET", f"{API}/sobjects/Contact/describe").json()
    names = {f["name"]: f for f in describe["fields"]}
    assert {"Id", "LastName", "Email", "AccountId", "SystemModstamp", "IsDeleted"} <= set(names)
    assert names["LastName"]["nillable"] is False
    assert names["SystemModstamp"]["type"] == "datetime"
    assert rest("GET", f"{API}/sobjects/Nope/describe").status_code == 404


def test_create_get_update_delete(rest):
    resp = rest("POST", f"{API}/sobjects/Contact", json={"LastName": "Doe", "FirstName": "Jo"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["success"] is True and body["errors"] == []
    cid = body["id"]
    assert len(cid) == 18 and cid.startswith("003") and is_valid_id(cid)
    assert to18(cid[:15]) == cid

    got = rest("GET", f"{API}/sobjects/Contact/{cid}").json()
    assert got["attributes"] == {"type": "Contact", "url": f"{API}/sobjects/Contact/{cid}"}
    assert got["Id"] == cid and got["Name"] == "Jo Doe" and got["IsDeleted"] is False
    for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
        assert DATETIME_RE.match(got[key]), got[key]
    # 15-character ids work as well
    assert rest("GET", f"{API}/sobjects/Contact/{cid[:15]}").status_code == 200

    some = rest("GET", f"{API}/sobjects/Contact/{cid}", params={"fields": "Id,Email"}).json()
    assert set(some) == {"attributes", "Id", "Email"}

    resp = rest("PATCH", f"{API}/sobjects/Contact/{cid}", json={"Email": "jo@example.com"})
    assert resp.status_code == 204 and resp.content == b""
    after = rest("GET", f"{API}/sobjects/Contact/{cid}").json()
    assert after["Email"] == "jo@example.com"
    assert after["SystemModstamp"] >= got["SystemModstamp"]

    assert rest("DELETE", f"{API}/sobjects/Contact/{cid}").status_code == 204
    gone = rest("GET", f"{API}/sobjects/Contact/{cid}")
    assert gone.status_code == 404
    assert gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_key_prefixes_and_required_fields(rest):
    good = {
        "Account": ({"Name": "Acme"}, "001"),
        "Contact": ({"LastName": "X"}, "003"),
        "Lead": ({"LastName": "X", "Company": "Y"}, "00Q"),
        "Case": ({"Subject": "Help"}, "500"),
        "Opportunity": (
            {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01"},
            "006",
        ),
    }
    for obj, (fields, prefix) in good.items():
        resp = rest("POST", f"{API}/sobjects/{obj}", json=fields)
        assert resp.status_code == 201, (obj, resp.text)
        assert resp.json()["id"].startswith(prefix)
    missing = {
        "Account": ["Name"],
        "Contact": ["LastName"],
        "Lead": ["LastName", "Company"],
        "Opportunity": ["Name", "StageName", "CloseDate"],
    }
    for obj, fields in missing.items():
        resp = rest("POST", f"{API}/sobjects/{obj}", json={"Description": "x"})
        assert resp.status_code == 400
        error = resp.json()[0]
        assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
        assert error["fields"] == fields
        assert error["message"] == f"Required fields are missing: [{', '.join(fields)}]"


def test_rest_errors(rest):
    resp = rest("POST", f"{API}/sobjects/Account", json={"Name": "A", "Bogus": 1})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "INVALID_FIELD"
    resp = rest(
        "POST",
        f"{API}/sobjects/Account",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    resp = rest("GET", f"{API}/sobjects/Account/001000000000000AAA")
    assert resp.status_code == 404
    assert resp.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    resp = rest("PATCH", f"{API}/sobjects/Account/001000000000000AAA", json={"Name": "x"})
    assert resp.status_code == 404
    resp = rest("POST", f"{API}/sobjects/Account", json={"Name": "A", "Id": "001"})
    assert resp.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    resp = rest("POST", f"{API}/sobjects/Contact", json={"LastName": "A", "AccountId": "zz"})
    assert resp.json()[0]["errorCode"] == "MALFORMED_ID"
    assert rest("GET", "/services/data/v1.0/sobjects").status_code == 404


def test_upsert_by_external_id(rest):
    url = f"{API}/sobjects/Contact/External_Id__c/ext-1"
    resp = rest("PATCH", url, json={"LastName": "First", "Email": "a@example.com"})
    assert resp.status_code == 201
    created = resp.json()
    assert created["created"] is True and created["success"] is True and created["errors"] == []
    resp = rest("PATCH", url, json={"LastName": "Second"})
    assert resp.status_code == 200
    assert resp.json() == {"id": created["id"], "success": True, "errors": [], "created": False}
    got = rest("GET", f"{API}/sobjects/Contact/{created['id']}").json()
    assert got["LastName"] == "Second" and got["External_Id__c"] == "ext-1"
    assert got["Email"] == "a@example.com"
    resp = rest("PATCH", f"{API}/sobjects/Account/External_Id__c/acc-9", json={"Name": "A"})
    assert resp.status_code == 201
    assert rest("PATCH", f"{API}/sobjects/Account/Name/x", json={"Name": "A"}).status_code == 404


def test_limit_info_header_and_limits(rest, control):
    resp = rest("GET", f"{API}/sobjects")
    assert resp.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    rest("GET", f"{API}/sobjects")
    limits = rest("GET", f"{API}/limits")
    assert limits.json()["DailyApiRequests"] == {"Max": 100000, "Remaining": 99998}
    assert limits.headers["Sforce-Limit-Info"] == "api-usage=2/100000"


def test_daily_limit_exceeded(rest, control):
    control.set_limits(max=10, usage=8)
    assert rest("GET", f"{API}/sobjects").status_code == 200
    resp = rest("GET", f"{API}/sobjects")
    assert resp.status_code == 200
    assert resp.headers["Sforce-Limit-Info"] == "api-usage=10/10"
    resp = rest("GET", f"{API}/sobjects")
    assert resp.status_code == 403
    assert resp.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    # /limits still answers (and shows no room) so that clients can wait for it
    limits = rest("GET", f"{API}/limits").json()
    assert limits["DailyApiRequests"] == {"Max": 10, "Remaining": 0}
    control.set_limits(usage=0)
    assert rest("GET", f"{API}/sobjects").status_code == 200


def test_composite_sobjects(rest):
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(3)]
    records.append({"attributes": {"type": "Contact"}, "FirstName": "No last name"})
    resp = rest("POST", f"{API}/composite/sobjects", json={"records": records})
    assert resp.status_code == 200
    results = resp.json()
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    resp = rest("POST", f"{API}/composite/sobjects", json={"allOrNone": True, "records": records})
    assert all(not r["success"] for r in resp.json())
    count = rest("GET", f"{API}/query", params={"q": "SELECT COUNT() FROM Account"}).json()
    assert count["totalSize"] == 3
    too_many = [{"attributes": {"type": "Account"}, "Name": "x"}] * 201
    resp = rest("POST", f"{API}/composite/sobjects", json={"records": too_many})
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_updated_and_deleted(rest, control):
    now = soql.parse_datetime(control.info()["now"]).replace(second=0, microsecond=0)

    def at(days: float) -> str:
        return (now + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    ids = control.seed("Account", 4, start=at(-20))
    control.modify_records("Account", ids[:1], {"Description": "changed"},
                           system_modstamp=at(-5))  # fmt: skip
    control.delete_records("Account", ids[1:2], system_modstamp=at(-4))
    params = {"start": at(-10), "end": at(1)}
    updated = rest("GET", f"{API}/sobjects/Account/updated/", params=params).json()
    assert updated["ids"] == ids[:1]
    assert updated["latestDateCovered"] == at(0)  # the current minute, not the future end
    deleted = rest("GET", f"{API}/sobjects/Account/deleted/", params=params).json()
    assert deleted["deletedRecords"] == [{"id": ids[1], "deletedDate": at(-4)}]
    too_old = rest("GET", f"{API}/sobjects/Account/updated/",
                   params={"start": at(-31), "end": at(0)})  # fmt: skip
    assert too_old.status_code == 400
    assert too_old.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    # seconds are dropped: a change at hh:mm:30 is inside a window that starts at hh:mm:59
    control.modify_records("Account", ids[2:3], {"Description": "x"},
                           system_modstamp=at(-3).replace(":00.000", ":30.000"))  # fmt: skip
    window = {"start": at(-3).replace(":00.000", ":59.000"), "end": at(-2)}
    assert rest("GET", f"{API}/sobjects/Account/updated/", params=window).json()["ids"] == [ids[2]]
    assert rest("GET", f"{API}/sobjects/Account/updated/").status_code == 400
