"""The simulator as an independent client sees it: simple-salesforce over the https (--tls) mode.

simple-salesforce builds only https URLs and maps status codes to its own exceptions, so every
assertion here is about the shapes and error codes Salesforce documents, read through a client
nobody here wrote. The token comes from the simulator's OAuth web-server flow (PKCE), the only
login simple-salesforce does not do itself.
"""

from __future__ import annotations

import datetime as dt

import pytest
from simhelpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, OAuthHelper
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from simulator import soql
from simulator.server import SimulatorServer
from simulator.tls import ensure_certificates


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    files = ensure_certificates(tmp_path_factory.mktemp("tls"))
    with SimulatorServer(tls=files) as server:
        yield server


@pytest.fixture
def sf(tls_sim, monkeypatch):
    # The documented way to trust the simulator: its bundle (the usual roots plus its CA).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_sim.tls.bundle))
    tls_sim.control.reset()
    tls_sim.control.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], auto_approve=True)
    token = OAuthHelper(tls_sim).login()
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      version="62.0")  # fmt: skip


def _error_code(exc: Exception) -> str:
    return exc.content[0]["errorCode"]  # type: ignore[attr-defined]


def test_crud_and_external_ids(sf, tls_sim):
    assert sf.base_url.startswith("https://127.0.0.1:")
    tls_sim.control.define_field("Contact", "Ext_Id__c", external_id=True)
    created = sf.Contact.create({"LastName": "Hopper", "FirstName": "Grace"})
    assert created["success"] is True and created["errors"] == [] and len(created["id"]) == 18
    record = sf.Contact.get(created["id"])
    assert record["attributes"]["type"] == "Contact" and record["Name"] == "Grace Hopper"
    assert sf.Contact.update(created["id"], {"Title": "Rear Admiral"}) == 204
    assert sf.Contact.upsert("Ext_Id__c/G-1", {"LastName": "Lovelace"}) == 201
    assert sf.Contact.upsert("Ext_Id__c/G-1", {"Title": "Countess"}) == 200
    by_ext = sf.Contact.get_by_custom_id("Ext_Id__c", "G-1")
    assert by_ext["LastName"] == "Lovelace" and by_ext["Title"] == "Countess"
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Contact.get(created["id"])
    assert _error_code(info.value) == "ENTITY_IS_DELETED"
    sf.Contact.create({"LastName": "Twin", "Ext_Id__c": "T"})
    sf.Contact.create({"LastName": "Twin", "Ext_Id__c": "T"})
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.get_by_custom_id("Ext_Id__c", "T")
    sf.query("SELECT Id FROM Contact LIMIT 1")
    assert sf.api_usage["api-usage"].used >= 1  # Sforce-Limit-Info, parsed by the client


def test_query_all_pages_relationships_and_aggregates(sf, tls_sim):
    tls_sim.control.seed("Account", 2300, fields={"Industry": "Energy"})
    first = sf.query("SELECT Id FROM Account")
    assert first["totalSize"] == 2300 and first["done"] is False
    assert len(first["records"]) == 2000 and first["nextRecordsUrl"]
    everything = sf.query_all("SELECT Id, Name FROM Account")
    assert len({r["Id"] for r in everything["records"]}) == 2300
    account = everything["records"][0]["Id"]
    sf.Contact.create({"LastName": "Child", "AccountId": account})
    child = sf.query("SELECT LastName, Account.Name, Account.Owner.Username FROM Contact")
    assert child["records"][0]["Account"]["Name"] == everything["records"][0]["Name"]
    assert child["records"][0]["Account"]["Owner"]["attributes"]["type"] == "User"
    nested = sf.query(f"SELECT Name, (SELECT LastName FROM Contacts) FROM Account "
                      f"WHERE Id = '{account}'")  # fmt: skip
    assert nested["records"][0]["Contacts"]["records"][0]["LastName"] == "Child"
    grouped = sf.query("SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry")
    assert grouped["records"] == [
        {"attributes": {"type": "AggregateResult"}, "Industry": "Energy", "n": 2300}
    ]
    today = sf.query("SELECT COUNT() FROM Account WHERE CreatedDate = LAST_N_DAYS:1")
    assert today["totalSize"] == 2300


def test_error_codes_through_the_clients_exceptions(sf, tls_sim):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Bogus FROM Contact")
    assert _error_code(info.value) == "INVALID_FIELD"
    assert "ERROR at Row:1:Column:8" in info.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Contact WHERE CreatedDate > 2026-01-01")
    assert _error_code(info.value) == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FRM Contact")
    assert _error_code(info.value) == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Contact.create({"FirstName": "NoLast"})
    assert _error_code(info.value) == "REQUIRED_FIELD_MISSING"
    tls_sim.control.set_limits(max=100, usage=100)
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Contact")
    assert _error_code(info.value) == "REQUEST_LIMIT_EXCEEDED"
    assert info.value.content[0]["message"] == "TotalRequests Limit exceeded."
    assert sf.limits()["DailyApiRequests"] == {"Max": 100, "Remaining": 0}  # /limits is free
    tls_sim.control.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as info:
        sf.Contact.describe()
    assert _error_code(info.value) == "INVALID_SESSION_ID"


def test_describe_limits_search_and_replication(sf, tls_sim):
    describe = sf.Contact.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["LastName"]["length"] == 80
    assert {"DailyApiRequests", "DailyBulkV2QueryJobs", "DataStorageMB"} <= set(sf.limits())
    sf.Account.create({"Name": "Searchable Corp"})
    found = sf.search("FIND {Searchable} RETURNING Account(Name)")
    assert [r["Name"] for r in found["searchRecords"]] == ["Searchable Corp"]
    assert sf.quick_search("Searchable")["searchRecords"][0]["attributes"]["type"] == "Account"
    now = soql.parse_datetime(tls_sim.control.info()["now"])
    window = (now - dt.timedelta(days=1), now + dt.timedelta(minutes=5))
    # The current minute is not covered yet (latestDateCovered stops at its start) ...
    assert sf.Account.updated(*window)["ids"] == []
    tls_sim.control.advance_clock(120)
    # ... and is once it has passed.
    changed = sf.Account.updated(*window)
    assert len(changed["ids"]) == 1 and changed["latestDateCovered"]
    deleted = sf.Account.deleted(now - dt.timedelta(days=1), now + dt.timedelta(minutes=2))
    assert deleted["deletedRecords"] == [] and "earliestDateAvailable" in deleted


def test_composite_through_restful(sf):
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "a",
         "body": {"Name": "Composite Co"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "c",
         "body": {"LastName": "Member", "AccountId": "@{a.id}"}},
    ]}  # fmt: skip
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 201]
    rows = sf.query("SELECT Account.Name FROM Contact WHERE LastName = 'Member'")["records"]
    assert rows[0]["Account"]["Name"] == "Composite Co"
    records = [{"attributes": {"type": "Account"}, "Name": f"Bulk {n}"} for n in range(3)]
    created = sf.restful("composite/sobjects", method="POST", json={"records": records})
    ids = [r["id"] for r in created]
    updates = [{"attributes": {"type": "Account"}, "id": i, "Industry": "Retail"} for i in ids]
    sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert sf.query("SELECT COUNT() FROM Account WHERE Industry = 'Retail'")["totalSize"] == 3
    removed = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids)})
    assert all(r["success"] for r in removed)
