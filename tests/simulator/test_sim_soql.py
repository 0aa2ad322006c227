"""SOQL as Salesforce answers it: relationships, subqueries, aggregates, date literals, FIELDS(),
escapes and the ERROR at Row:1:Column:N error form."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from simhelpers import API

from simulator import soql
from simulator.control import SimulatorControlError
from simulator.soql.dates import date_range


def _q(rest, text: str, path: str = "query"):
    return rest("GET", f"{API}/{path}", params={"q": text})


def _ok(rest, text: str) -> dict:
    resp = _q(rest, text)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def org(control):
    """Two accounts, three contacts (one without an account), opportunities with amounts."""
    acme = control.create_record("Account", {"Name": "Acme", "Industry": "Energy"})
    globex = control.create_record("Account", {"Name": "Globex", "Industry": "Energy"})
    control.create_record("Account", {"Name": "Lonely", "Industry": "Retail"})
    ada = control.create_record(
        "Contact", {"FirstName": "Ada", "LastName": "Lovelace", "AccountId": acme}
    )
    control.create_record("Contact", {"FirstName": "Alan", "LastName": "Turing", "AccountId": acme})
    control.create_record("Contact", {"FirstName": "Grace", "LastName": "Hopper"})
    for name, amount, account, stage in [
        ("A1", 100, acme, "Prospecting"),
        ("A2", 300, acme, "Closed Won"),
        ("G1", 50.5, globex, "Prospecting"),
    ]:
        control.create_record(
            "Opportunity",
            {"Name": name, "Amount": amount, "AccountId": account, "StageName": stage,
             "CloseDate": "2026-06-30"},
        )  # fmt: skip
    return {"acme": acme, "globex": globex, "ada": ada}


def test_parent_fields_two_levels_nested_under_the_relationship(rest, org, control):
    body = _ok(
        rest,
        "SELECT FirstName, Account.Name, Account.Owner.Email, Owner.Username FROM Contact "
        "ORDER BY FirstName",
    )
    ada, alan, grace = body["records"]
    user = control.info()
    assert ada["Account"]["attributes"] == {
        "type": "Account",
        "url": f"{API}/sobjects/Account/{org['acme']}",
    }
    assert ada["Account"]["Name"] == "Acme"
    assert ada["Account"]["Owner"]["attributes"]["type"] == "User"
    assert ada["Account"]["Owner"]["Email"] == user["username"]
    assert ada["Owner"] == {
        "attributes": {"type": "User", "url": f"{API}/sobjects/User/{user['user_id']}"},
        "Username": user["username"],
    }
    assert list(ada) == ["attributes", "FirstName", "Account", "Owner"]
    assert grace["Account"] is None  # an empty reference is null, not a dict of nulls
    assert alan["Account"]["Name"] == "Acme"


def test_parent_fields_in_where_and_order_by(rest, org):
    body = _ok(rest, "SELECT LastName FROM Contact WHERE Account.Name = 'acme' ORDER BY LastName")
    assert [r["LastName"] for r in body["records"]] == ["Lovelace", "Turing"]
    body = _ok(rest, "SELECT Name FROM Opportunity WHERE Account.Owner.IsActive = true "
                     "ORDER BY Account.Name DESC, Name")  # fmt: skip
    assert [r["Name"] for r in body["records"]] == ["G1", "A1", "A2"]
    body = _ok(rest, "SELECT LastName FROM Contact WHERE Account.Name = null")
    assert [r["LastName"] for r in body["records"]] == ["Hopper"]


def test_unknown_relationship_and_field_errors(rest, org):
    resp = _q(rest, "SELECT Acount.Name FROM Contact")
    assert resp.status_code == 400
    error = resp.json()[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "Didn't understand relationship 'Acount' in field path" in error["message"]
    resp = _q(rest, "SELECT Account.Nope FROM Contact")
    assert resp.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope' on entity 'Account'" in resp.json()[0]["message"]


def test_child_subquery_nested_shape(rest, org):
    body = _ok(
        rest,
        "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName DESC) FROM Account "
        "ORDER BY Name",
    )
    acme, globex, lonely = body["records"]
    contacts = acme["Contacts"]
    assert contacts["totalSize"] == 2 and contacts["done"] is True
    assert [c["LastName"] for c in contacts["records"]] == ["Turing", "Lovelace"]
    assert contacts["records"][0]["attributes"]["type"] == "Contact"
    assert globex["Contacts"] is None and lonely["Contacts"] is None
    body = _ok(rest, "SELECT Name, (SELECT Name, Amount FROM Opportunities WHERE Amount > 200) "
                     "FROM Account WHERE Name = 'Acme'")  # fmt: skip
    assert [o["Name"] for o in body["records"][0]["Opportunities"]["records"]] == ["A2"]
    resp = _q(rest, "SELECT Name, (SELECT Id FROM Contactz) FROM Account")
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_TYPE"
    assert "Didn't understand relationship 'Contactz'" in resp.json()[0]["message"]


def test_semi_join(rest, org):
    body = _ok(rest, "SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact) "
                     "ORDER BY Name")  # fmt: skip
    assert [r["Name"] for r in body["records"]] == ["Acme"]
    body = _ok(rest, "SELECT Name FROM Account WHERE Id NOT IN "
                     "(SELECT AccountId FROM Opportunity) ORDER BY Name")  # fmt: skip
    assert [r["Name"] for r in body["records"]] == ["Lonely"]


def test_aggregates_group_by_having_aliases(rest, org):
    body = _ok(rest, "SELECT COUNT(Id), COUNT_DISTINCT(Industry), MAX(Name) top FROM Account")
    assert body["totalSize"] == 1 and body["done"] is True
    assert body["records"] == [
        {"attributes": {"type": "AggregateResult"}, "expr0": 3, "expr1": 2, "top": "Lonely"}
    ]
    body = _ok(
        rest,
        "SELECT Account.Name, SUM(Amount) total, AVG(Amount), MIN(Amount), COUNT(Id) "
        "FROM Opportunity GROUP BY Account.Name ORDER BY SUM(Amount) DESC",
    )
    assert body["records"] == [
        {"attributes": {"type": "AggregateResult"}, "Name": "Acme", "total": 400,
         "expr0": 200.0, "expr1": 100, "expr2": 2},
        {"attributes": {"type": "AggregateResult"}, "Name": "Globex", "total": 50.5,
         "expr0": 50.5, "expr1": 50.5, "expr2": 1},
    ]  # fmt: skip
    body = _ok(rest, "SELECT Industry, COUNT(Id) n FROM Account GROUP BY Industry "
                     "HAVING COUNT(Id) > 1")  # fmt: skip
    assert [(r["Industry"], r["n"]) for r in body["records"]] == [("Energy", 2)]
    empty = _ok(rest, "SELECT COUNT(Id) FROM Account WHERE Name = 'none'")
    assert empty["records"][0]["expr0"] == 0


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT Industry, Name FROM Account GROUP BY Industry", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY", "does not support aggregate"),
        ("SELECT Id FROM Account WHERE COUNT(Id) > 1", "MALFORMED_QUERY", "WHERE"),
    ],
)  # fmt: skip
def test_aggregate_errors(rest, org, text, code, needle):
    resp = _q(rest, text)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code and needle in resp.json()[0]["message"]


def test_error_message_form_points_at_row_and_column(rest):
    text = "SELECT Id FROM Contact WHERE CreatedDate > 2026-01-01"
    error = _q(rest, text).json()[0]
    column = text.index("2026") + 1
    assert error["errorCode"] == "INVALID_FIELD"
    assert error["message"] == (
        f"\n{text}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n"
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and "
        "should not be enclosed in quotes"
    )
    error = _q(rest, "SELECT Id FRM Contact").json()[0]
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "\nERROR at Row:1:Column:11\n" in error["message"]
    error = _q(rest, "SELECT Id\nFROM Contact\nWHERE Bogus__x = 1").json()[0]
    assert error["errorCode"] == "INVALID_FIELD"
    assert "ERROR at Row:3:Column:7\nNo such column 'Bogus__x'" in error["message"]
    error = _q(rest, "SELECT Id FROM Nothing").json()[0]
    assert error["errorCode"] == "INVALID_TYPE" and "Row:1:Column:16" in error["message"]


def _midday(control) -> dt.datetime:
    """Move the simulator's clock to the next 12:00 UTC; return that instant.

    That can be almost a day ahead (after 12:00 UTC), longer than a session lasts, so the
    test's token is made to outlive the jump."""
    control.set_session_timeout(3 * 24 * 3600)
    now = soql.parse_datetime(control.info()["now"])
    target = now.replace(hour=12, minute=0, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    control.advance_clock((target - now).total_seconds())
    return target


def test_date_literals_on_datetime_fields_use_the_org_time_zone(rest, control):
    noon = _midday(control)
    early = noon - dt.timedelta(hours=3)  # 09:00 UTC = 23:00 the day before in UTC+14
    control.seed("Account", 1, start=early.strftime("%Y-%m-%dT%H:%M:%SZ"))
    control.update_settings(org_time_zone="UTC")
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate = TODAY")["totalSize"] == 1
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate = YESTERDAY")["totalSize"] == 0
    control.update_settings(org_time_zone="Pacific/Kiritimati")
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate = TODAY")["totalSize"] == 0
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate = YESTERDAY")["totalSize"] == 1
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate < TODAY")["totalSize"] == 1
    assert _ok(rest, "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:1")["totalSize"] == 1


RANGE_LITERALS = [
    "THIS_MONTH",
    "LAST_MONTH",
    "NEXT_MONTH",
    "THIS_WEEK",
    "THIS_QUARTER",
    "THIS_YEAR",
    "LAST_N_MONTHS:2",
    "NEXT_N_WEEKS:3",
    "THIS_FISCAL_YEAR",
]


def test_date_literals_on_date_fields(rest, control):
    noon = _midday(control)
    today = noon.astimezone(ZoneInfo("Europe/London")).date()
    offsets = [-40, -10, -3, 0, 1, 5, 70]
    for days in offsets:
        control.create_record(
            "Opportunity",
            {"Name": str(days), "StageName": "Prospecting",
             "CloseDate": (today + dt.timedelta(days=days)).isoformat()},
        )  # fmt: skip

    def names(where: str) -> list[int]:
        body = _ok(rest, f"SELECT Name FROM Opportunity WHERE {where}")
        return sorted(int(r["Name"]) for r in body["records"])

    def expected(name: str, n: int | None = None) -> list[int]:
        start, end = date_range(name, n, today)
        return [d for d in offsets if start <= today + dt.timedelta(days=d) < end]

    assert names("CloseDate = TODAY") == [0]
    assert names("CloseDate = YESTERDAY") == []
    assert names("CloseDate = TOMORROW") == [1]
    assert names("CloseDate = LAST_N_DAYS:5") == [-3, 0]
    assert names("CloseDate = NEXT_N_DAYS:5") == [1, 5]
    assert names("CloseDate > TODAY") == [1, 5, 70]
    assert names("CloseDate >= TODAY") == [0, 1, 5, 70]
    assert names("CloseDate <= YESTERDAY") == [-40, -10, -3]
    assert names("CloseDate = N_DAYS_AGO:10") == [-10]
    assert names("CloseDate = LAST_90_DAYS") == [-40, -10, -3, 0]
    assert names("CloseDate IN (TODAY, TOMORROW)") == [0, 1]
    for literal in RANGE_LITERALS:
        name, _, n = literal.partition(":")
        assert names(f"CloseDate = {literal}") == expected(name, int(n) if n else None), literal
    resp = _q(rest, "SELECT Id FROM Opportunity WHERE Name = TODAY")
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_FIELD"


def test_date_range_units():
    today = dt.date(2026, 2, 18)  # a Wednesday
    assert date_range("THIS_WEEK", None, today) == (dt.date(2026, 2, 16), dt.date(2026, 2, 23))
    assert date_range("LAST_MONTH", None, today) == (dt.date(2026, 1, 1), dt.date(2026, 2, 1))
    assert date_range("NEXT_QUARTER", None, today) == (dt.date(2026, 4, 1), dt.date(2026, 7, 1))
    assert date_range("LAST_N_DAYS", 7, today) == (dt.date(2026, 2, 11), dt.date(2026, 2, 19))
    assert date_range("N_YEARS_AGO", 1, today) == (dt.date(2025, 1, 1), dt.date(2026, 1, 1))


def test_fields_standard_and_limits_on_all(rest, org, control):
    control.modify_records("Account", [org["acme"]], {"Ext_Id__c": "A-1"})
    body = _ok(rest, "SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'")
    record = body["records"][0]
    assert {"Id", "Name", "Industry", "OwnerId", "SystemModstamp"} <= set(record)
    assert "Ext_Id__c" not in record
    body = _ok(rest, "SELECT FIELDS(ALL) FROM Account WHERE Name = 'Acme' LIMIT 200")
    assert body["records"][0]["Ext_Id__c"] == "A-1"
    resp = _q(rest, "SELECT FIELDS(ALL) FROM Account")
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert "LIMIT of at most 200" in resp.json()[0]["message"]


@pytest.mark.parametrize(
    ("stored", "literal"),
    [
        ("Line\nBreak", "Line\\nBreak"),
        ("Line\nBreak", "Line\\NBreak"),
        ("Tab\there", "Tab\\There"),
        ('Say "hi"', 'Say \\"hi\\"'),
        ("Back\\slash", "Back\\\\slash"),
        ("It's", "It\\'s"),
        ("Car\rriage", "Car\\rriage"),
    ],
)
def test_documented_escapes(rest, control, stored, literal):
    control.create_record("Contact", {"LastName": "Esc", "Title": stored})
    body = _ok(rest, f"SELECT Title FROM Contact WHERE Title = '{literal}'")
    assert [r["Title"] for r in body["records"]] == [stored]


def test_like_escapes_and_bad_escape(rest, control):
    control.create_record("Contact", {"LastName": "100%_sure"})
    control.create_record("Contact", {"LastName": "100 x sure"})
    body = _ok(rest, "SELECT LastName FROM Contact WHERE LastName LIKE '100\\%\\_%'")
    assert [r["LastName"] for r in body["records"]] == ["100%_sure"]
    error = _q(rest, "SELECT Id FROM Contact WHERE LastName = 'bad \\q'").json()[0]
    assert (
        error["errorCode"] == "MALFORMED_QUERY" and "Illegal character sequence" in error["message"]
    )


def test_polymorphic_who_and_what_on_task(rest, org, control):
    lead = control.create_record("Lead", {"LastName": "Leed", "Company": "Co"})
    control.create_record("Task", {"Subject": "Call", "WhoId": org["ada"], "WhatId": org["acme"]})
    control.create_record("Task", {"Subject": "Email", "WhoId": lead})
    body = _ok(rest, "SELECT Subject, Who.Name, What.Name FROM Task ORDER BY Subject")
    call, email = body["records"]
    assert call["Who"]["attributes"]["type"] == "Contact" and call["Who"]["Name"] == "Ada Lovelace"
    assert call["What"]["Name"] == "Acme"
    assert email["Who"]["attributes"]["type"] == "Lead" and email["What"] is None
    body = _ok(rest, "SELECT Name, (SELECT Subject FROM Tasks) FROM Contact WHERE Id = "
                     f"'{org['ada']}'")  # fmt: skip
    assert body["records"][0]["Tasks"]["records"][0]["Subject"] == "Call"


def test_org_time_zone_setting_is_checked(control):
    with pytest.raises(SimulatorControlError):
        control.update_settings(org_time_zone="Mars/Olympus")
    assert control.settings()["org_time_zone"] == "Europe/London"


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Name FROM Account USING SCOPE Everything WHERE Name = 'Acme'",
        "SELECT Name FROM Account WHERE Name = 'Acme' WITH SECURITY_ENFORCED",
        "SELECT Name FROM Account WHERE Name = 'Acme' WITH USER_MODE ORDER BY Name LIMIT 5",
        "SELECT Name FROM Account WHERE Name = 'Acme' LIMIT 1 FOR VIEW",
    ],
)
def test_clauses_from_salesforce_docs_are_accepted(rest, org, text):
    assert [r["Name"] for r in _ok(rest, text)["records"]] == ["Acme"]


def test_bad_scope_clause_is_malformed(rest, org):
    error = _q(rest, "SELECT Name FROM Account WITH NOTHING").json()[0]
    assert error["errorCode"] == "MALFORMED_QUERY" and "Column:" in error["message"]


def test_date_functions_in_group_by_select_where_and_order(rest, control):
    for close, amount in [("2025-03-10", 10), ("2025-11-02", 20), ("2026-01-05", 5)]:
        control.create_record("Opportunity", {"Name": close, "StageName": "Prospecting",
                                              "CloseDate": close, "Amount": amount})  # fmt: skip
    year = "CALENDAR_YEAR(CloseDate)"
    body = _ok(rest, f"SELECT {year}, SUM(Amount) FROM Opportunity GROUP BY {year} "
                     f"ORDER BY {year} DESC")  # fmt: skip
    assert body["records"] == [
        {"attributes": {"type": "AggregateResult"}, "expr0": 2026, "expr1": 5},
        {"attributes": {"type": "AggregateResult"}, "expr0": 2025, "expr1": 30},
    ]
    body = _ok(rest, "SELECT CALENDAR_QUARTER(CloseDate) q, COUNT(Id) FROM Opportunity "
                     "WHERE CALENDAR_YEAR(CloseDate) = 2025 GROUP BY CALENDAR_QUARTER(CloseDate) "
                     "HAVING COUNT(Id) = 1 ORDER BY CALENDAR_QUARTER(CloseDate)")  # fmt: skip
    assert [(r["q"], r["expr0"]) for r in body["records"]] == [(1, 1), (4, 1)]
    names = _ok(rest, "SELECT Name FROM Opportunity WHERE DAY_IN_WEEK(CloseDate) = 2")
    assert [r["Name"] for r in names["records"]] == ["2025-03-10", "2026-01-05"]  # Mondays
    error = _q(rest, "SELECT HOUR_IN_DAY(CloseDate), COUNT(Id) FROM Opportunity "
                     "GROUP BY HOUR_IN_DAY(CloseDate)").json()[0]  # fmt: skip
    assert error["errorCode"] == "MALFORMED_QUERY"
    error = _q(rest, "SELECT CALENDAR_YEAR(CloseDate) FROM Opportunity").json()[0]
    assert error["errorCode"] == "MALFORMED_QUERY" and "aggregate" in error["message"]
