"""REST details behaviors rely on: external ids, describe metadata, custom fields, /limits,
SOSL search, the standard objects Lead/Opportunity/Task/User."""

from __future__ import annotations

import pytest
from simhelpers import API

from simulator.control import SimulatorControlError


def test_get_patch_delete_by_external_id(rest, control):
    control.define_field("Contact", "Ext_Id__c", external_id=True, unique=True, length=20)
    resp = rest("PATCH", f"{API}/sobjects/Contact/Ext_Id__c/E-1", json={"LastName": "Ext"})
    assert resp.status_code == 201 and resp.json()["created"] is True
    record_id = resp.json()["id"]
    got = rest("GET", f"{API}/sobjects/Contact/Ext_Id__c/E-1")
    assert got.status_code == 200
    assert got.json()["Id"] == record_id and got.json()["Ext_Id__c"] == "E-1"
    assert got.json()["attributes"]["url"] == f"{API}/sobjects/Contact/{record_id}"
    resp = rest("PATCH", f"{API}/sobjects/Contact/Ext_Id__c/E-1", json={"Title": "Updated"})
    assert resp.status_code == 200 and resp.json()["created"] is False
    missing = rest("GET", f"{API}/sobjects/Contact/Ext_Id__c/E-404")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    assert rest("DELETE", f"{API}/sobjects/Contact/Ext_Id__c/E-1").status_code == 204
    assert rest("GET", f"{API}/sobjects/Contact/Ext_Id__c/E-1").status_code == 404


def test_two_records_with_one_external_id_answer_300(rest, control):
    for _ in range(2):
        control.create_record("Contact", {"LastName": "Twin", "Loose__c": "same"})
    resp = rest("GET", f"{API}/sobjects/Contact/Loose__c/same")
    assert resp.status_code == 300
    assert all(u.startswith(f"{API}/sobjects/Contact/003") for u in resp.json())
    assert len(resp.json()) == 2


def test_custom_fields_through_the_control_api(rest, control):
    spec = control.define_field("Account", "Tier__c", "picklist", picklist_values=["Gold", "Tin"],
                                label="Tier")  # fmt: skip
    assert spec["label"] == "Tier" and spec["type"] == "picklist"
    control.define_field("Account", "Score__c", "double")
    control.define_field("Account", "Code__c", length=3, unique=True)
    with pytest.raises(SimulatorControlError) as info:
        control.define_field("Account", "NoSuffix", "string")
    assert "__c" in str(info.value)
    created = rest("POST", f"{API}/sobjects/Account",
                   json={"Name": "C", "Score__c": 4.5, "Code__c": "ABC"})  # fmt: skip
    assert created.status_code == 201
    body = rest("GET", f"{API}/query", params={"q": "SELECT Name FROM Account WHERE Score__c > 4"})
    assert body.json()["totalSize"] == 1
    too_long = rest("POST", f"{API}/sobjects/Account", json={"Name": "D", "Code__c": "ABCD"})
    assert too_long.status_code == 400
    assert too_long.json()[0]["errorCode"] == "STRING_TOO_LONG"
    duplicate = rest("POST", f"{API}/sobjects/Account", json={"Name": "E", "Code__c": "ABC"})
    assert duplicate.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    wrong_type = rest("POST", f"{API}/sobjects/Account", json={"Name": "F", "Score__c": "x"})
    assert wrong_type.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    fields = {
        f["name"]: f for f in rest("GET", f"{API}/sobjects/Account/describe").json()["fields"]
    }
    assert fields["Tier__c"]["custom"] is True
    assert [p["value"] for p in fields["Tier__c"]["picklistValues"]] == ["Gold", "Tin"]
    assert fields["Code__c"]["length"] == 3 and fields["Code__c"]["unique"] is True
    assert fields["Score__c"]["type"] == "double" and fields["Score__c"]["soapType"] == "xsd:double"


def test_describe_is_realistic(rest):
    describe = rest("GET", f"{API}/sobjects/Contact/describe").json()
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["LastName"]["length"] == 80 and fields["LastName"]["nillable"] is False
    assert fields["Email"]["type"] == "email" and fields["Email"]["nillable"] is True
    account = fields["AccountId"]
    assert account["referenceTo"] == ["Account"] and account["relationshipName"] == "Account"
    assert fields["OwnerId"]["referenceTo"] == ["User"] and fields["OwnerId"]["updateable"]
    assert fields["Name"]["updateable"] is False and fields["Name"]["calculated"] is True
    assert fields["Id"]["updateable"] is False and fields["Id"]["nillable"] is False
    assert fields["AccountId"]["label"] == "Account ID"
    for field in describe["fields"]:
        assert {"length", "picklistValues", "relationshipName", "referenceTo", "nillable",
                "updateable", "createable", "soapType", "label"} <= set(field)  # fmt: skip
    children = {c["relationshipName"]: c for c in describe["childRelationships"]}
    assert children["Cases"] == {"childSObject": "Case", "field": "ContactId",
                                 "relationshipName": "Cases", "cascadeDelete": False}  # fmt: skip
    opp = rest("GET", f"{API}/sobjects/Opportunity/describe").json()
    stage = {f["name"]: f for f in opp["fields"]}["StageName"]
    assert stage["type"] == "picklist" and "Closed Won" in [p["value"] for p in
                                                            stage["picklistValues"]]  # fmt: skip
    task = {f["name"]: f for f in rest("GET", f"{API}/sobjects/Task/describe").json()["fields"]}
    assert task["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    assert task["WhoId"]["polymorphicForeignKey"] is True
    user = rest("GET", f"{API}/sobjects/User/describe").json()
    assert user["createable"] is False and user["labelPlural"] == "Users"


def test_lead_opportunity_task_user(rest, control):
    lead = rest("POST", f"{API}/sobjects/Lead", json={"LastName": "L", "Company": "Co"}).json()
    assert rest("GET", f"{API}/sobjects/Lead/{lead['id']}").json()["Status"] == (
        "Open - Not Contacted"
    )
    won = {"Name": "O", "StageName": "Closed Won", "CloseDate": "2026-12-31"}
    opp = rest("POST", f"{API}/sobjects/Opportunity", json=won)
    got = rest("GET", f"{API}/sobjects/Opportunity/{opp.json()['id']}").json()
    assert got["IsWon"] is True and got["IsClosed"] is True
    task = rest("POST", f"{API}/sobjects/Task",
                json={"Subject": "Call", "WhoId": lead["id"], "Status": "Completed"})  # fmt: skip
    assert rest("GET", f"{API}/sobjects/Task/{task.json()['id']}").json()["IsClosed"] is True
    bad = rest("POST", f"{API}/sobjects/Task", json={"WhoId": opp.json()["id"]})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "MALFORMED_ID"
    users = rest("GET", f"{API}/query", params={"q": "SELECT Username, Name FROM User"}).json()
    assert users["records"][0]["Username"] == control.info()["username"]
    refused = rest("POST", f"{API}/sobjects/User", json={"Username": "x@y"})
    assert refused.status_code == 400
    assert refused.json()[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


def test_limits_has_salesforce_keys(rest, control):
    control.set_limits(max=5000, usage=10)
    limits = rest("GET", f"{API}/limits").json()
    assert limits["DailyApiRequests"] == {"Max": 5000, "Remaining": 4990}
    for key in ("DailyBulkV2QueryJobs", "DailyBulkApiBatches", "ConcurrentAsyncGetReportInstances",
                "DataStorageMB", "FileStorageMB", "HourlyODataCallout", "SingleEmail",
                "StreamingApiConcurrentClients", "DailyAsyncApexExecutions"):  # fmt: skip
        assert set(limits[key]) >= {"Max", "Remaining"}, key
    assert len(limits) >= 50
    assert limits["PermissionSets"]["CreateCustom"] == {"Max": 1000, "Remaining": 1000}


def test_sosl_search(rest, control):
    acme = control.create_record("Account", {"Name": "Acme Widgets", "Industry": "Energy"})
    control.create_record("Account", {"Name": "Other", "Description": "acme partner"})
    control.create_record("Contact", {"LastName": "Acmeson", "Email": "boss@acme.example",
                                      "AccountId": acme})  # fmt: skip
    control.create_record("Contact", {"LastName": "Nobody"})

    def search(q: str):
        return rest("GET", f"{API}/search", params={"q": q})

    body = search("FIND {acme} RETURNING Account(Id, Name ORDER BY Name), Contact(LastName)")
    assert body.status_code == 200, body.text
    records = body.json()["searchRecords"]
    assert [(r["attributes"]["type"], r.get("Name") or r.get("LastName")) for r in records] == [
        ("Account", "Acme Widgets"),
        ("Account", "Other"),
        ("Contact", "Acmeson"),  # whole word in the email address
    ]
    named = search("FIND {acme*} IN NAME FIELDS RETURNING Account(Name), Contact(LastName)")
    assert [r.get("Name") or r.get("LastName") for r in named.json()["searchRecords"]] == [
        "Acme Widgets", "Acmeson"]  # fmt: skip
    where = search("FIND {acme} RETURNING Account(Name WHERE Industry = 'Energy')")
    assert [r["Name"] for r in where.json()["searchRecords"]] == ["Acme Widgets"]
    everything = search("FIND {acme} LIMIT 2").json()["searchRecords"]
    assert len(everything) == 2 and set(everything[0]) == {"attributes", "Id"}
    assert search("FIND {a}").json()[0]["errorCode"] == "MALFORMED_SEARCH"
    assert search("SELECT Id FROM Account").json()[0]["errorCode"] == "MALFORMED_SEARCH"
    assert search("FIND {acme} RETURNING Nope").json()[0]["errorCode"] == "INVALID_TYPE"


def test_strict_custom_fields_refuse_undefined_ones(rest, control):
    control.update_settings(strict_custom_fields=True)
    control.define_field("Contact", "Known__c")
    ok = rest("POST", f"{API}/sobjects/Contact", json={"LastName": "S", "Known__c": "x"})
    assert ok.status_code == 201
    bad = rest("POST", f"{API}/sobjects/Contact", json={"LastName": "S", "Unknown__c": "x"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    query = rest("GET", f"{API}/query", params={"q": "SELECT Unknown__c FROM Contact"})
    assert query.status_code == 400 and query.json()[0]["errorCode"] == "INVALID_FIELD"
    known = rest("GET", f"{API}/query", params={"q": "SELECT Known__c FROM Contact"})
    assert known.json()["records"][0]["Known__c"] == "x"
