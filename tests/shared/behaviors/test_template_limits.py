"""Template bombs: rendering itself is bounded (time and memory), not checked afterwards."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from shared.behaviors.templates import TemplateLimitError, render_value

CTX = {"inputs": {}, "steps": {}, "vars": {}, "run": {"id": 1}}

BOMBS = {
    "center filter": "{{ 'x'|center(50000000) }}",
    "center method": "{{ 'x'.center(50000000) }}",
    "ljust method": "a{{ 'x'.ljust(50000000) }}",
    "zfill method": "{{ '1'.zfill(50000000) }}",
    "percent width": "{{ '%50000000d' % 1 }}",
    "percent precision": "{{ '%.50000000f' % 1.0 }}",
    "percent star width": "{{ '%*d' % (50000000, 1) }}",
    "format filter": "{{ '%50000000d'|format(1) }}",
    "str.format width": "{{ '{:>50000000}'.format(1) }}",
    "indent filter": "{{ ('x\n' * 1000)|indent(60000) }}",
    "wordwrap filter": "{{ 'ab'|wordwrap(50000000) }}",
    "truncate filter": "{{ 'ab'|truncate(50000000) }}",
    "tojson indent": "{{ {'a': [1, 2]}|tojson(50000000) }}",
    "replace method": "{{ ('x' * 60000).replace('', 'y' * 60000) }}",
    "replace filter": "{{ ('x' * 60000)|replace('x', 'yy') }}",
    "join filter": "{{ range(10000)|join('y' * 60000) }}",
    "join method": "{{ ('y' * 60000).join('x' * 60000) }}",
    "expandtabs": "{{ ('\t' * 60000).expandtabs(60000) }}",
    "nested range loops": (
        "{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}done"
    ),
    "loop with output": (
        "{% for i in range(5000) %}{% for j in range(5000) %}x{% endfor %}{% endfor %}"
    ),
    "huge range": "{{ range(100000000)|length }}",
    "chained power": "{{ ((10 ** 100) ** 100) ** 100 }}",
    "power tower": "{{ 9 ** (9 ** 9) }}",
    "squaring in a loop": (
        "{% set ns = namespace(n=2 ** 100) %}"
        "{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}"
    ),
    "doubling a namespace string": (
        "{% set ns = namespace(s='x' * 60000) %}"
        "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "list concatenation": "{{ ('x' * 60000)|list + ('x' * 60000)|list + ('x' * 60000)|list"
    " + ('x' * 60000)|list + ('x' * 60000)|list }}",
}


@pytest.mark.parametrize("template", BOMBS.values(), ids=BOMBS.keys())
def test_bomb_stops_at_a_limit_quickly_and_small(template: str) -> None:
    # CPU time, not wall time: the machine running the tests may be busy with other work.
    started = time.process_time()
    with pytest.raises(TemplateLimitError, match="template limit"):
        render_value(template, CTX)
    elapsed = time.process_time() - started
    assert elapsed < 1.0, f"{elapsed:.2f} s of CPU"
    # Again under tracemalloc (which slows Python down several times) for the peak.
    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimitError):
            render_value(template, CTX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'ab'|center(6) }}", "  ab  "),
        ("{{ '%05.2f' % 3.14159 }}", "03.14"),
        ("{{ '%(a)s-%(b)d' % {'a': 'x', 'b': 2} }}", "x-2"),
        ("{{ '{:>4}'.format(7) }}", "   7"),
        ("{{ 2 ** 64 }}", 2**64),
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{{ [1] + [2] }}", [1, 2]),
        ("{{ range(3)|join(',') }}", "0,1,2"),
        ("{{ [{'n': 'a'}, {'n': 'b'}]|join('/', attribute='n') }}", "a/b"),
        ("{{ 'a b c'|replace(' ', '-') }}", "a-b-c"),
        ("{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}ok", "ok"),
        (
            "{% set ns = namespace(total=0) %}{% for i in range(100) %}"
            "{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
            "4950",
        ),
        ("{% for x in [1, 2, 3] %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3 "),
    ],
)
def test_ordinary_templates_still_render(template: str, expected: object) -> None:
    assert render_value(template, CTX) == expected


def test_each_rendered_value_has_its_own_loop_budget() -> None:
    loop = "{% for i in range(9000) %}{% for j in range(10) %}{% endfor %}{% endfor %}ok"
    assert render_value([loop] * 3, CTX) == ["ok"] * 3  # 90,000 each, under 100,000
