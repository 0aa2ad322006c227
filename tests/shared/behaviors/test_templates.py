"""Templates: typed single expressions, `when` semantics, the soql filter, the sandbox."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import TemplateError
from jinja2.sandbox import SecurityError

from shared.behaviors.templates import (
    MAX_RENDERED_CHARS,
    TemplateLimitError,
    is_true,
    render_value,
    soql_literal,
)
from simulator import soql as sim_soql

CTX = {
    "inputs": {"email": "a@example.com", "n": 3, "flag": False, "tags": ["x", "y"]},
    "steps": {"contact": {"totalSize": 0, "records": []}, "skipped": None},
    "vars": {"count": 2},
    "run": {"id": 7},
}


def test_single_expression_keeps_its_type() -> None:
    assert render_value("{{ inputs.n }}", CTX) == 3
    assert render_value("  {{ inputs.flag }} ", CTX) is False
    assert render_value("{{ inputs.tags }}", CTX) == ["x", "y"]
    assert render_value("{{ steps.skipped }}", CTX) is None
    assert render_value("{{ {'a': vars.count} }}", CTX) == {"a": 2}


def test_anything_else_renders_as_a_string() -> None:
    assert render_value("n={{ inputs.n }}", CTX) == "n=3"
    assert render_value("{{ inputs.n }}{{ inputs.n }}", CTX) == "33"
    assert render_value("none: {{ steps.skipped }}", CTX) == "none: "
    assert render_value({"k": ["{{ run.id }}", "plain"]}, CTX) == {"k": [7, "plain"]}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("{{ steps.contact.totalSize > 0 }}", False),
        ("steps.contact.totalSize == 0", True),
        ("False", False),
        ("false", False),
        ("{{ 'False' }}", False),
        ("{{ 'no' }}", False),
        ("{{ 0 }}", False),
        ("True", True),
        ("inputs.email", True),
        ("{{ steps.skipped }}", False),
        (False, False),
        (True, True),
        ("{{ inputs.tags }}", True),
    ],
)
def test_when_is_judged_by_value(condition: object, expected: bool) -> None:
    assert is_true(condition, CTX) is expected


def test_undefined_names_are_errors() -> None:
    with pytest.raises(TemplateError, match="nope"):
        render_value("{{ inputs.nope }}", CTX)
    with pytest.raises(TemplateError):
        is_true("steps.missing.totalSize > 0", CTX)


def test_soql_filter_keeps_an_injection_inside_one_literal() -> None:
    payload = "x' OR Name LIKE '%"
    rendered = render_value(
        "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}",
        {**CTX, "inputs": {"email": payload}},
    )
    assert rendered == "SELECT Id FROM Contact WHERE Email = 'x\\' OR Name LIKE \\'%'"
    query = sim_soql.parse(rendered)
    assert query.where.field == "Email" and query.where.value == payload


def test_soql_literals() -> None:
    assert soql_literal(None) == "null"
    assert soql_literal(True) == "true"
    assert soql_literal(42) == "42"
    assert soql_literal(1.5) == "1.5"
    assert soql_literal(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)) == "2024-05-01T12:00:00Z"
    assert soql_literal(dt.date(2024, 5, 1)) == "2024-05-01"
    assert soql_literal(["a", "b'"]) == "('a','b\\'')"
    assert soql_literal([]) == "(null)"
    assert soql_literal("back\\slash\nnew") == "'back\\\\slash\\nnew'"
    with pytest.raises(TemplateError):
        soql_literal({"a": 1})


@given(st.text(max_size=60))
def test_soql_output_always_parses_as_one_literal(value: str) -> None:
    query = sim_soql.parse(f"SELECT Id FROM Contact WHERE Name = {soql_literal(value)} LIMIT 1")
    assert query.where.op == "=" and query.where.value == value
    assert query.limit == 1


@given(
    st.lists(st.one_of(st.text(max_size=20), st.integers(-(10**6), 10**6)), min_size=1, max_size=5)
)
def test_soql_lists_parse_as_one_in_list(values: list) -> None:
    query = sim_soql.parse(f"SELECT Id FROM Contact WHERE Name IN {soql_literal(values)}")
    assert query.where.op == "IN" and query.where.value == values


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ inputs.__class__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
        "{{ inputs.email.format.__globals__ }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
        "{{ 'a' * 100000000 }}",
        "{{ 10 ** 100000 }}",
    ],
)
def test_sandbox_escapes_are_refused(template: str) -> None:
    with pytest.raises((SecurityError, TemplateError)) as info:
        render_value(template, CTX)
    assert isinstance(info.value, SecurityError) or "undefined" in str(info.value)


def test_no_dangerous_globals() -> None:
    for name in ("cycler", "joiner", "lipsum"):
        with pytest.raises(TemplateError, match="undefined"):
            render_value("{{ " + name + " }}", CTX)


def test_rendered_size_is_limited() -> None:
    big = {**CTX, "vars": {"s": "x" * (MAX_RENDERED_CHARS + 1)}}
    with pytest.raises(TemplateLimitError):
        render_value("a{{ vars.s }}", big)
    with pytest.raises(TemplateLimitError):
        render_value("{{ vars.s }}", big)


def test_step_ids_named_like_dict_methods_mean_the_step() -> None:
    ctx = {**CTX, "steps": {"get": {"status": 404}, "items": [1, 2], "keys": {"a": 1}}}
    assert render_value("{{ steps.get.status }}", ctx) == 404
    assert render_value("{{ steps.items | length }}", ctx) == 2
    assert render_value("{{ steps.keys.a }}", ctx) == 1
