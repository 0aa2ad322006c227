"""http.request definitions with `account: none`: every problem listed at save time."""

from __future__ import annotations

from shared.behaviors.definition import account_names, validate_definition


def definition(**step):
    return {"name": "x", "steps": [{"id": "s", "action": "http.request", **step}]}


def test_account_none_is_valid_and_not_an_account_name():
    good = definition(
        account="none",
        url="https://hooks.example/x",
        form={"a": "1"},
        timeout=5,
        follow_redirects=True,
    )
    assert validate_definition(good) == []
    assert account_names(good) == []


def test_bad_http_request_fields_are_all_listed():
    problems = validate_definition(
        definition(
            account="none",
            url="https://x.test",
            json={},
            form={},
            timeout=0,
            follow_redirects=[1],
            method="BREW",
        )
    )
    assert any("one of json, body or form" in p for p in problems)
    assert any(p.startswith("steps[0].timeout") for p in problems)
    assert any(p.startswith("steps[0].follow_redirects") for p in problems)
    assert any(p.startswith("steps[0].method") for p in problems)


def test_account_none_only_for_http_request():
    problems = validate_definition(
        {
            "name": "x",
            "steps": [
                {
                    "id": "q",
                    "action": "salesforce.query",
                    "soql": "SELECT Id FROM A",
                    "account": "none",
                }
            ],
        }
    )
    assert problems == ["steps[0].account: none is only for http.request"]
