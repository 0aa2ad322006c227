"""Composite resources: sobjects collections, /composite chaining and allOrNone, batch, tree."""

from __future__ import annotations

from simhelpers import API


def _names(control, obj: str = "Account") -> list[str]:
    return sorted(r["Name"] for r in control.records(obj, include_deleted=False))


def test_collections_update_and_delete(rest, control):
    ids = [control.create_record("Account", {"Name": n}) for n in ("a", "b")]
    resp = rest("PATCH", f"{API}/composite/sobjects", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "id": ids[0], "Name": "a2"},
        {"attributes": {"type": "Account"}, "id": "001000000000000AAA", "Name": "x"},
    ]})  # fmt: skip
    results = resp.json()
    assert resp.status_code == 200
    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert results[1]["success"] is False and results[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert _names(control) == ["a2", "b"]
    # allOrNone: one bad record rolls the good update back
    resp = rest("PATCH", f"{API}/composite/sobjects", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Account"}, "id": ids[0], "Name": "a3"},
        {"attributes": {"type": "Account"}, "id": ids[1], "Name": None},
    ]})  # fmt: skip
    first, second = resp.json()
    assert first["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert second["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert _names(control) == ["a2", "b"]
    resp = rest("DELETE", f"{API}/composite/sobjects", params={"ids": ",".join(ids)})
    assert [r["success"] for r in resp.json()] == [True, True]
    assert _names(control) == []
    got = rest("GET", f"{API}/composite/sobjects/Account",
               params={"ids": ids[0], "fields": "Id,Name"})  # fmt: skip
    assert got.json() == [None]


def test_composite_reference_chaining(rest, control):
    body = {"compositeRequest": [
        {"method": "POST", "url": f"{API}/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Chained"}},
        {"method": "POST", "url": f"{API}/sobjects/Contact", "referenceId": "person",
         "body": {"LastName": "Link", "AccountId": "@{acct.id}"}},
        {"method": "GET", "url": f"{API}/sobjects/Account/@{{acct.id}}?fields=Name",
         "referenceId": "read"},
        {"method": "GET", "referenceId": "q",
         "url": f"{API}/query?q=SELECT+Id,Account.Name+FROM+Contact+WHERE+LastName='Link'"},
        {"method": "PATCH", "url": f"{API}/sobjects/Contact/@{{q.records[0].Id}}",
         "referenceId": "touch", "body": {"Title": "@{read.Name}"}},
    ]}  # fmt: skip
    resp = rest("POST", f"{API}/composite", json=body)
    assert resp.status_code == 200
    out = {r["referenceId"]: r for r in resp.json()["compositeResponse"]}
    acct_id = out["acct"]["body"]["id"]
    assert out["acct"]["httpStatusCode"] == 201
    assert out["acct"]["httpHeaders"] == {"Location": f"{API}/sobjects/Account/{acct_id}"}
    assert out["read"]["body"]["Name"] == "Chained"
    assert out["q"]["body"]["records"][0]["Account"]["Name"] == "Chained"
    assert out["touch"]["httpStatusCode"] == 204 and out["touch"]["body"] is None
    contact = control.records("Contact")[0]
    assert contact["AccountId"] == acct_id and contact["Title"] == "Chained"
    assert control.counters()["api_calls"] == 1  # one composite call, however many parts


def test_composite_all_or_none_rolls_back_and_halts(rest, control):
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{API}/sobjects/Account", "referenceId": "ok",
         "body": {"Name": "Kept?"}},
        {"method": "POST", "url": f"{API}/sobjects/Contact", "referenceId": "bad",
         "body": {"FirstName": "NoLastName"}},
        {"method": "POST", "url": f"{API}/sobjects/Account", "referenceId": "after",
         "body": {"Name": "Never"}},
    ]}  # fmt: skip
    out = rest("POST", f"{API}/composite", json=body).json()["compositeResponse"]
    codes = [(r["referenceId"], r["httpStatusCode"], r["body"][0]["errorCode"]) for r in out]
    assert codes == [
        ("ok", 400, "PROCESSING_HALTED"),
        ("bad", 400, "REQUIRED_FIELD_MISSING"),
        ("after", 400, "PROCESSING_HALTED"),
    ]
    assert control.records("Account") == []
    # without allOrNone: the first stays, a reference to the failed one halts its dependant
    body["allOrNone"] = False
    body["compositeRequest"][2]["body"] = {"Name": "@{bad.id}"}
    out = rest("POST", f"{API}/composite", json=body).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 400, 400]
    assert "No value for bad.id" in out[2]["body"][0]["message"]
    assert _names(control) == ["Kept?"]


def test_batch_and_halt_on_error(rest, control):
    account = control.create_record("Account", {"Name": "Batch"})
    body = {"haltOnError": True, "batchRequests": [
        {"method": "PATCH", "url": f"v62.0/sobjects/Account/{account}",
         "richInput": {"Name": "Batched"}},
        {"method": "GET", "url": "v62.0/sobjects/Account/001000000000000AAA"},
        {"method": "GET", "url": f"v62.0/sobjects/Account/{account}"},
    ]}  # fmt: skip
    resp = rest("POST", f"{API}/composite/batch", json=body).json()
    assert resp["hasErrors"] is True
    assert [r["statusCode"] for r in resp["results"]] == [204, 404, 412]
    assert resp["results"][2]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    assert _names(control) == ["Batched"]


def test_tree_creates_parents_and_children_or_nothing(rest, control):
    tree = {"records": [
        {"attributes": {"type": "Account", "referenceId": "ref1"}, "Name": "Tree Co",
         "Contacts": {"records": [
             {"attributes": {"type": "Contact", "referenceId": "ref2"}, "LastName": "Leaf"},
         ]}},
    ]}  # fmt: skip
    resp = rest("POST", f"{API}/composite/tree/Account", json=tree)
    assert resp.status_code == 201, resp.text
    results = resp.json()
    assert results["hasErrors"] is False
    assert [r["referenceId"] for r in results["results"]] == ["ref1", "ref2"]
    contact = control.records("Contact")[0]
    assert contact["AccountId"] == results["results"][0]["id"]
    leaf = {"attributes": {"type": "Contact", "referenceId": "ref3"}, "FirstName": "NoLast"}
    tree["records"][0]["Contacts"]["records"][0] = leaf
    tree["records"][0]["attributes"]["referenceId"] = "ref4"
    resp = rest("POST", f"{API}/composite/tree/Account", json=tree)
    assert resp.status_code == 400
    body = resp.json()
    assert body["hasErrors"] is True and body["results"][0]["referenceId"] == "ref3"
    assert body["results"][0]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert _names(control) == ["Tree Co"]  # the second tree's account was rolled back
