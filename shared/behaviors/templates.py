"""Sandboxed Jinja2 templates for behavior definitions.

Templates see `inputs`, `steps`, `vars` and `run` (plus `item`/`loop` inside `foreach`), and
two filters of ours: `soql` (quote a value as a SOQL literal) and `tojson`.

A value that is exactly one `{{ expression }}` keeps the expression's type; anything else
renders as a string. `when:` is judged by its value, with or without `{{ }}`.

The environment is Jinja's immutable sandbox: attributes starting with `_` are refused
(`''.__class__`, `cycler.__init__.__globals__`), the globals are trimmed to `range`, `dict`
and `namespace`, and string/list repetition and powers are capped so that one expression
cannot allocate gigabytes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

__all__ = [
    "MAX_RENDERED_CHARS",
    "SecurityError",
    "TemplateError",
    "check_template",
    "has_template",
    "is_true",
    "render_value",
    "soql_literal",
    "truthy",
]

MAX_RENDERED_CHARS = 256 * 1024
MAX_REPEAT_CHARS = 64 * 1024
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
_FALSE_STRINGS = frozenset({"", "false", "0", "no", "off", "none", "null"})
# Escape sequences of a SOQL string literal.
_SOQL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)


class TemplateLimitError(TemplateError):
    """A rendered value is larger than MAX_RENDERED_CHARS."""


def soql_literal(value: Any) -> str:
    """Render `value` as one SOQL literal: a quoted, escaped string, a number, a date, a list."""
    if isinstance(value, Undefined):
        value = str(value)  # StrictUndefined raises here, with Jinja's own message
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"soql: {value} is not a SOQL number")
        return repr(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TemplateError(f"soql: {value} is not a SOQL number")
        return format(value, "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if not items:
            # `IN ()` is malformed SOQL; `IN (null)` is valid and matches nothing.
            return "(null)"
        return "(" + ",".join(soql_literal(item) for item in items) + ")"
    if isinstance(value, Mapping):
        raise TemplateError("soql: an object cannot be a SOQL value")
    return "'" + str(value).translate(_SOQL_ESCAPES) + "'"


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, sort_keys=False, default=str)


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A key wins over a dict method: `steps.get`, `steps.items` or a field named `keys`
        # must mean the step or the field, not dict.get.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise SecurityError("exponent too large in template")
            return left**right
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(count, int):
                if len(seq) * count > MAX_REPEAT_CHARS:
                    raise SecurityError("repetition result too large in template")
        return left * right


def _make_environment() -> _Environment:
    env = _Environment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )
    env.globals = {k: v for k, v in env.globals.items() if k in ("range", "dict", "namespace")}
    env.filters["soql"] = soql_literal
    env.filters["tojson"] = _tojson
    return env


ENV = _make_environment()


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _unsafe_names(tree: nodes.Node) -> list[str]:
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Filter):
            # `x | attr("__class__")` is the filter spelling of `x.__class__`.
            if node.name != "attr" or not node.args or not isinstance(node.args[0], nodes.Const):
                continue
            name = str(node.args[0].value)
        elif isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            found.append(name)
    return found


def check_template(text: str, *, expression: bool = False) -> str | None:
    """Return a problem with `text` as a template (syntax, line, unsafe access), or None."""
    source = "{{ " + text + " }}" if expression else text
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on line {exc.lineno}: {exc.message}"
    unsafe = _unsafe_names(tree)
    if unsafe:
        return f"template accesses {unsafe[0]!r}: names starting with '_' are not allowed"
    return None


def _check_size(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_RENDERED_CHARS:
        raise TemplateLimitError(
            f"rendered value is {len(value)} characters; the limit is {MAX_RENDERED_CHARS}"
        )
    return value


# Behaviors render the same few strings on every run; compiling is ~40x the cost of rendering.
@functools.lru_cache(maxsize=4096)
def _compiled_expression(expr: str) -> Any:
    return ENV.compile_expression(expr, undefined_to_none=False)


@functools.lru_cache(maxsize=4096)
def _compiled_template(text: str) -> Any:
    return ENV.from_string(text)


def _evaluate(expr: str, context: Mapping[str, Any]) -> Any:
    value = _compiled_expression(expr)(**context)
    if isinstance(value, Undefined):
        # Make StrictUndefined raise its descriptive error ("'x' is undefined").
        str(value)
    return _check_size(value)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render strings inside `value` (recursively through lists and dicts)."""
    if isinstance(value, str):
        if not has_template(value):
            return value
        match = _SINGLE_EXPRESSION.match(value)
        if match and "{{" not in match.group("expr") and "}}" not in match.group("expr"):
            return _evaluate(match.group("expr"), context)
        return _check_size(_compiled_template(value).render(**context))
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {str(render_value(k, context)): render_value(v, context) for k, v in value.items()}
    return value


def truthy(value: Any) -> bool:
    """Judge a rendered value: the strings "False", "0", "no", "" and "null" are false."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS
    if isinstance(value, Undefined):
        return False
    return bool(value)


def is_true(condition: Any, context: Mapping[str, Any]) -> bool:
    """Evaluate a `when:` condition, written with or without `{{ }}`."""
    if isinstance(condition, str) and not has_template(condition):
        if condition.strip().lower() in _FALSE_STRINGS | {"true", "yes", "on", "1"}:
            return truthy(condition)
        return truthy(_evaluate(condition, context))
    return truthy(render_value(condition, context))
