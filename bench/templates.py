"""Template rendering: our sandboxed, typed rendering vs plain Jinja2 on the same step."""

from __future__ import annotations

import time

import jinja2

from shared.behaviors.templates import render_value

STEP = {
    "sobject": "Case",
    "fields": {
        "Subject": "{{ inputs.subject }}",
        "ContactId": "{{ steps.contact.records[0].Id }}",
        "Description": "Opened for {{ inputs.email }} ({{ steps.contact.totalSize }} match)",
    },
    "soql": "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}",
}
CONTEXT = {
    "inputs": {"email": "ada@acme.example", "subject": "Printer on fire"},
    "steps": {"contact": {"totalSize": 1, "records": [{"Id": "0035g00000AbCdEAAV"}]}},
    "vars": {},
    "run": {"id": 1},
}


_COMPILED: dict[str, jinja2.Template] = {}


def _bare(env: jinja2.Environment, value: object) -> object:
    """Plain Jinja2 with compiled templates cached: the fastest honest baseline."""
    if isinstance(value, dict):
        return {k: _bare(env, v) for k, v in value.items()}
    if isinstance(value, str):
        template = _COMPILED.get(value)
        if template is None:
            template = _COMPILED[value] = env.from_string(value)
        return template.render(CONTEXT)
    return value


def _time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return time.perf_counter() - start


def run(repeat: int = 2000) -> float:
    env = jinja2.Environment()
    env.filters["soql"] = lambda v: "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"
    _bare(env, STEP)
    render_value(STEP, CONTEXT)
    bare = _time(lambda: _bare(env, STEP), repeat)
    ours = _time(lambda: render_value(STEP, CONTEXT), repeat)
    ratio = ours / bare
    print(
        f"templates: {repeat} step renders  bare jinja2 {bare * 1e6 / repeat:.1f} µs  "
        f"sandboxed+typed {ours * 1e6 / repeat:.1f} µs  ratio {ratio:.2f}x"
    )
    return ratio
