"""Sandboxed Jinja2 templates for behavior definitions.

Templates see `inputs`, `steps`, `vars` and `run` (plus `item`/`loop` inside `foreach`), and
three filters of ours: `soql` (a value as a SOQL literal), `soql_like` (a string as a LIKE
pattern literal, `%` and `_` escaped) and `tojson`.

`soql` renders strings quoted and escaped; dates as `2026-12-01` and datetimes as
`2026-12-01T09:00:00Z` (UTC; a naive one is taken as UTC), both unquoted; numbers in plain
decimal (`0.00001`, never `1e-05`); booleans as `true`/`false`; None as `null`; lists as
`(a,b)`. Inputs declared `type: date` / `type: datetime` reach templates parsed
(`typed_inputs`) as `TemporalInput`: a `str` holding the canonical SOQL spelling (so it still
serializes into JSON bodies and run records as text) whose `.value` is the date / datetime, and
which `soql` renders unquoted — `WHERE CreatedDate > {{ inputs.since | soql }}` needs no raw
`{{ inputs.since }}`.

A value that is exactly one `{{ expression }}` keeps the expression's type; anything else
renders as a string. `when:` is judged by its value, with or without `{{ }}`.

The environment is Jinja's immutable sandbox: attributes starting with `_` are refused
(`''.__class__`, `cycler.__init__.__globals__`) and the globals are trimmed to `range`, `dict`
and `namespace`.

Rendering itself is bounded, so that no template can allocate much memory or spin for long
before a limit stops it (`TemplateLimitError`, a `SecurityError`, so the step fails as
`template_refused` with the limit named):
- width and size arguments (`center`, `indent`, `truncate`, `wordwrap`, `tojson` indent, the
  `ljust`/`rjust`/`center`/`zfill`/`expandtabs` methods) at most MAX_WIDTH; `replace` and
  `join` refuse results above MAX_REPEAT_CHARS; `%`-formatting, the `format` filter and
  `str.format` refuse widths and precisions above MAX_WIDTH (and `*` widths);
- `*` repetition of strings and lists, and `+` of strings and lists, are capped; integer `*`
  and `**` refuse results above MAX_INT_BITS bits;
- `range()` yields at most MAX_RANGE items, and all `{% for %}` loops of one rendered value
  together run at most MAX_LOOP_ITERATIONS iterations and MAX_RENDER_SECONDS seconds;
- `namespace()` attributes hold at most MAX_RENDERED_CHARS characters or items;
- output is counted while it is produced: a template stops as soon as its output passes
  MAX_RENDERED_CHARS, not after building it.
Concatenation with `~` is not intercepted; each of its operands is bounded as above.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import functools
import json
import math
import re
import string
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    nodes,
    pass_environment,
    pass_eval_context,
)
from jinja2.filters import do_indent, do_truncate, do_wordwrap, make_attrgetter, sync_do_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

__all__ = [
    "MAX_RENDERED_CHARS",
    "SecurityError",
    "TemplateError",
    "TemporalInput",
    "check_template",
    "has_template",
    "is_true",
    "render_value",
    "soql_like",
    "soql_literal",
    "truthy",
    "typed_inputs",
]

MAX_RENDERED_CHARS = 256 * 1024
MAX_REPEAT_CHARS = 64 * 1024
MAX_WIDTH = MAX_REPEAT_CHARS  # a width, padding, precision or length argument
MAX_INT_BITS = 16 * 1024  # about 4,900 decimal digits
MAX_RANGE = 10_000
MAX_LOOP_ITERATIONS = 100_000  # all loops of one rendered value together
MAX_RENDER_SECONDS = 5.0  # a backstop; the limits above stop known bombs far sooner
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


class TemplateLimitError(SecurityError):
    """Rendering would pass one of the limits above; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"template limit: {message}")


@dataclass
class _Budget:
    iterations: int = MAX_LOOP_ITERATIONS
    deadline: float = 0.0

    def tick(self) -> None:
        self.iterations -= 1
        if self.iterations < 0:
            raise TemplateLimitError(f"loops ran more than {MAX_LOOP_ITERATIONS} iterations")
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"rendering took more than {MAX_RENDER_SECONDS:g} s")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "forcebot_template_budget", default=None
)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # a template rendered outside render_value (tests, previews)
        budget = _Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS)
        _BUDGET.set(budget)
    return budget


def _bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.tick()
        yield item


def _check_width(name: str, value: Any) -> None:
    if isinstance(value, int) and value > MAX_WIDTH:
        raise TemplateLimitError(f"{name}: {value} is larger than {MAX_WIDTH}")


def _check_length(name: str, length: int) -> None:
    if length > MAX_REPEAT_CHARS:
        raise TemplateLimitError(f"{name}: result of {length} is larger than {MAX_REPEAT_CHARS}")


# One printf conversion: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?[a-zA-Z%]"
)


def _check_printf(fmt: str) -> None:
    for match in _PRINTF.finditer(fmt):
        for part in ("width", "precision"):
            value = match.group(part)
            if value == "*":
                raise TemplateLimitError(f"'%' formatting: a '*' {part} is not allowed")
            if value:
                _check_width(f"'%' formatting {part}", int(value))


def _check_str_format(fmt: str) -> None:
    for _literal, field_name, spec, _conversion in string.Formatter().parse(fmt):
        if field_name is None or not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("str.format: nested fields in a format spec are not allowed")
        for number in re.findall(r"\d+", spec):
            _check_width("str.format width or precision", int(number))


def _center(value: Any, width: int = 80) -> str:
    _check_width("center width", width)
    return str(value).center(width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(value)
    pad = width if isinstance(width, int) else len(str(width))
    _check_width("indent width", pad)
    _check_length("indent", len(text) + pad * (text.count("\n") + 1))
    return str(do_indent(text, width, first, blank))


@pass_environment
def _truncate(env: Any, value: Any, length: int = 255, *args: Any, **kwargs: Any) -> str:
    _check_width("truncate length", length)
    return str(do_truncate(env, value, length, *args, **kwargs))


@pass_environment
def _wordwrap(env: Any, value: Any, width: int = 79, *args: Any, **kwargs: Any) -> str:
    _check_width("wordwrap width", width)
    return str(do_wordwrap(env, value, width, *args, **kwargs))


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise TemplateError("format: positional and keyword arguments at the same time")
    fmt = str(value)
    _check_printf(fmt)
    return fmt % (kwargs or args)


def _joined_length(items: list[Any], separator: str) -> int:
    return sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if attribute is not None:
        items = list(map(make_attrgetter(eval_ctx.environment, attribute), items))
    _check_length("join", _joined_length(items, str(d)))
    return str(sync_do_join(eval_ctx, items, d))


def _replaced_length(text: str, old: str, new: str, count: int = -1) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    _check_length(
        "replace", _replaced_length(text, str(old), str(new), -1 if count is None else count)
    )
    return text.replace(str(old), str(new), -1 if count is None else count)


def _check_str_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a str method call whose result would be too large, before it is made."""
    target = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(target, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(name + " width", args[0])
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            _check_length("expandtabs", len(owner) + owner.count("\t") * tabsize)
    elif name == "replace" and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _check_length("replace", _replaced_length(owner, str(args[0]), str(args[1]), count))
    elif name == "join" and args:
        items = list(args[0])
        _check_length("join", _joined_length(items, owner))
    elif name in ("format", "format_map"):
        _check_str_format(owner)


class _BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past MAX_RENDERED_CHARS (a `set` in a loop)."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, str | list | tuple | dict) and len(value) > MAX_RENDERED_CHARS:
            raise TemplateLimitError(
                f"namespace value of {len(value)} is larger than {MAX_RENDERED_CHARS}"
            )
        super().__setitem__(name, value)


def _range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise TemplateLimitError(f"range of {len(values)} items is larger than {MAX_RANGE}")
    return values


def _check_int_bits(operator: str, bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"'{operator}' result of ~{bits} bits is larger than {MAX_INT_BITS}"
        )


class TemporalInput(str):
    """A date/datetime input: its SOQL spelling as text, the parsed object as `.value`."""

    value: dt.date

    def __new__(cls, value: dt.date) -> TemporalInput:
        text = super().__new__(cls, soql_literal(value))
        text.value = value
        return text


def soql_literal(value: Any) -> str:
    """Render `value` as one SOQL literal: a quoted, escaped string, a number, a date, a list."""
    if isinstance(value, TemporalInput):
        return str.__str__(value)
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
        # repr is the shortest exact spelling; Decimal writes it without an exponent.
        return format(decimal.Decimal(repr(value)), "f")
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


def soql_like(value: Any, prefix: str = "", suffix: str = "") -> str:
    """A quoted SOQL LIKE pattern matching `value` literally (`%`, `_` escaped).

    `prefix`/`suffix` add wildcards (only `%` and `_`): `{{ name | soql_like('', '%') }}` is
    "starts with".
    """
    if isinstance(value, Undefined):
        value = str(value)
    for extra in (prefix, suffix):
        if not isinstance(extra, str) or extra.strip("%_"):
            raise TemplateError("soql_like: prefix and suffix may hold only '%' and '_'")
    if value is None or isinstance(value, Mapping | list | tuple | set):
        raise TemplateError("soql_like: expected a text value")
    text = str(value).translate(_SOQL_ESCAPES).replace("%", "\\%").replace("_", "\\_")
    return "'" + prefix + text + suffix + "'"


def _parse_datetime(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_INPUT_PARSERS = {"date": dt.date.fromisoformat, "datetime": _parse_datetime}


def typed_inputs(declared: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared input (None when absent), `date`/`datetime` strings as TemporalInput.

    A value that does not parse is left as it came: validating payloads is the definition's
    job (at trigger time), and a string renders quoted, never raw.
    """
    result: dict[str, Any] = {name: None for name in declared}
    result.update(values)
    for name, spec in declared.items():
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        parse = _INPUT_PARSERS.get(kind) if isinstance(kind, str) else None
        raw = result.get(name)
        if parse is not None and isinstance(raw, str) and not isinstance(raw, TemporalInput):
            try:
                result[name] = TemporalInput(parse(raw))
            except ValueError:
                pass
    return result


def _tojson(value: Any, indent: int | None = None) -> str:
    if isinstance(indent, int) and indent > 16:
        raise TemplateLimitError(f"tojson indent {indent} is larger than 16")
    return json.dumps(value, indent=indent, sort_keys=False, default=str)


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every `{% for %}` iterates through _bounded_loop, which counts against the budget.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_bounded_loop", [], [], None, None, lineno=loop.lineno
            )
        return tree

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _check_str_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A key wins over a dict method: `steps.get`, `steps.items` or a field named `keys`
        # must mean the step or the field, not dict.get.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise TemplateLimitError(f"exponent {right} is larger than 100")
            if ints and right > 0:
                _check_int_bits("**", max(abs(left).bit_length(), 1) * right)
            return left**right
        if operator == "%":
            if isinstance(left, str):
                _check_printf(left)
            return left % right
        if operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                if len(left) + len(right) > MAX_RENDERED_CHARS:
                    raise TemplateLimitError(
                        f"'+' result is larger than {MAX_RENDERED_CHARS} characters or items"
                    )
            return left + right
        if ints:
            _check_int_bits("*", abs(left).bit_length() + abs(right).bit_length())
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(count, int):
                if len(seq) * count > MAX_REPEAT_CHARS:
                    raise TemplateLimitError(
                        f"repetition result is larger than {MAX_REPEAT_CHARS} characters or items"
                    )
        return left * right


def _make_environment() -> _Environment:
    env = _Environment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=lambda value: "" if value is None else value,
    )
    env.globals = {"range": _range, "dict": dict, "namespace": _BoundedNamespace}
    env.filters["soql"] = soql_literal
    env.filters["soql_like"] = soql_like
    env.filters["tojson"] = _tojson
    env.filters["_bounded_loop"] = _bounded_loop
    env.filters.update(
        center=_center,
        indent=_indent,
        truncate=_truncate,
        wordwrap=_wordwrap,
        format=_format,
        join=_join,
        replace=_replace,
    )
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


def _render_template(text: str, context: Mapping[str, Any]) -> str:
    """Render, counting the output as it is produced (a bomb stops at the limit)."""
    parts: list[str] = []
    size = 0
    for part in _compiled_template(text).generate(**context):
        size += len(part)
        if size > MAX_RENDERED_CHARS:
            raise TemplateLimitError(f"rendered value is more than {MAX_RENDERED_CHARS} characters")
        parts.append(part)
    return "".join(parts)


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
    """Render strings inside `value` (recursively through lists and dicts).

    Each template string gets its own loop and time budget.
    """
    if isinstance(value, str):
        if not has_template(value):
            return value
        token = _BUDGET.set(_Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS))
        try:
            match = _SINGLE_EXPRESSION.match(value)
            if match and "{{" not in match.group("expr") and "}}" not in match.group("expr"):
                return _evaluate(match.group("expr"), context)
            return _render_template(value, context)
        finally:
            _BUDGET.reset(token)
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
