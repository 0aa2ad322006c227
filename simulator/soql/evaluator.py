"""Evaluate a parsed WHERE / HAVING / ORDER BY over rows.

A row is anything a ``Ref``'s getter understands: a stored record (dict keyed by canonical field
name) for WHERE, a group of records for HAVING. ``compile_where`` takes a ``resolve`` callable
that maps each comparison to a ``Ref`` (how to read the left side, its type and name).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from simulator.ids import to18
from simulator.soql.dates import date_range
from simulator.soql.errors import SoqlError
from simulator.soql.parser import BoolOp, Comparison, DateLiteral, Not, SubQuery

NUMERIC = ("double", "int", "currency", "percent")
TEXT = ("string", "email", "textarea", "picklist", "combobox", "phone", "url", "id", "reference")


@dataclass
class Ref:
    """A resolved field path: how to read it from a row, its type and its canonical name."""

    name: str  # canonical name of the final field ("Email")
    ftype: str
    get: Callable[[Any], Any]
    hops: list[tuple[str, str]] = field(default_factory=list)  # (reference field, relationship)
    key: tuple[str, ...] = ()  # canonical path, e.g. ("Account", "Owner", "Email")


@dataclass
class Context:
    """What evaluation needs beyond the rows: the org's clock and zone, and semi-joins."""

    today: dt.date
    zone: ZoneInfo
    semi_join: Callable[[SubQuery], set[Any]] | None = None


FieldResolver = Callable[[Comparison], Ref]


def _type_error(name: str, ftype: str, pos: int) -> SoqlError:
    kind, quotes = {
        "datetime": ("dateTime", "should not"),
        "date": ("date", "should not"),
        "boolean": ("boolean", "should not"),
    }.get(ftype, ("double", "should not") if ftype in NUMERIC else ("string", "should"))
    return SoqlError(
        f"value of filter criterion for field '{name}' must be of type {kind} and {quotes} "
        "be enclosed in quotes",
        "INVALID_FIELD",
        pos,
    )


def _coerce(value: Any, ftype: str, name: str, pos: int) -> Any:
    """Check a literal against the field's type, as Salesforce does before running a query."""
    if value is None or ftype == "anyType":
        return value
    if ftype == "datetime":
        if isinstance(value, dt.datetime):
            return value
        raise _type_error(name, ftype, pos)
    if ftype == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise _type_error(name, ftype, pos)
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        raise _type_error(name, ftype, pos)
    if ftype in NUMERIC:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _type_error(name, ftype, pos)
    if isinstance(value, str):
        return value
    raise _type_error(name, ftype, pos)


def norm(value: Any, ftype: str) -> Any:
    """Normalise a stored or literal value for comparison (text compares case-insensitively,
    ids by their 18-character form)."""
    if isinstance(value, str):
        if ftype in ("id", "reference"):
            if len(value) == 15:
                try:
                    return to18(value)
                except ValueError:
                    return value
            return value
        return value.lower()
    return value


def _like(pattern: str, value: str) -> bool:
    regex = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            regex.append(".*")
        elif ch == "_":
            regex.append(".")
        else:
            regex.append(re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), value, re.IGNORECASE | re.DOTALL) is not None


def _literal_range(lit: DateLiteral, ftype: str, name: str, ctx: Context) -> tuple[Any, Any]:
    if ftype not in ("date", "datetime"):
        raise _type_error(name, ftype, lit.pos)
    start, end = date_range(lit.name, lit.n, ctx.today)
    if ftype == "date":
        return start, end

    def midnight(day: dt.date) -> dt.datetime:
        local = dt.datetime(day.year, day.month, day.day, tzinfo=ctx.zone)
        return local.astimezone(dt.UTC)

    return midnight(start), midnight(end)


def _in_range(value: Any, bounds: tuple[Any, Any], op: str) -> bool:
    if value is None:
        return op == "!="
    start, end = bounds
    if op == "=":
        return bool(start <= value < end)
    if op == "!=":
        return not start <= value < end
    if op == "<":
        return bool(value < start)
    if op == "<=":
        return bool(value < end)
    if op == ">":
        return bool(value >= end)
    return bool(value >= start)


def compile_where(node: Any, resolve: FieldResolver, ctx: Context) -> Callable[[Any], bool]:
    """Turn a WHERE (or HAVING) tree into a predicate over rows."""
    if node is None:
        return lambda row: True
    if isinstance(node, BoolOp):
        parts = [compile_where(item, resolve, ctx) for item in node.items]
        if node.op == "AND":
            return lambda row: all(p(row) for p in parts)
        return lambda row: any(p(row) for p in parts)
    if isinstance(node, Not):
        inner = compile_where(node.item, resolve, ctx)
        return lambda row: not inner(row)
    assert isinstance(node, Comparison)
    ref = resolve(node)
    name, ftype, get, op = ref.name, ref.ftype, ref.get, node.op
    if op in ("IN", "NOTIN"):
        if isinstance(node.value, SubQuery):
            if ctx.semi_join is None:
                raise SoqlError("semi-join sub-selects are not supported here", pos=node.value_pos)
            wanted = {norm(v, ftype) for v in ctx.semi_join(node.value)}
        else:
            if any(isinstance(v, DateLiteral) for v in node.value):
                ranges = [_literal_range(v, ftype, name, ctx) for v in node.value]

                def pred_in_ranges(row: Any) -> bool:
                    hit = any(_in_range(get(row), b, "=") for b in ranges)
                    return hit if op == "IN" else not hit

                return pred_in_ranges
            wanted = {norm(_coerce(v, ftype, name, node.value_pos), ftype) for v in node.value}

        def pred_in(row: Any) -> bool:
            hit = norm(get(row), ftype) in wanted
            return hit if op == "IN" else not hit

        return pred_in
    if op == "LIKE":
        if ftype not in TEXT and ftype != "anyType":
            raise SoqlError(
                f"invalid operator on field '{name}' of type {ftype}", "INVALID_FIELD", node.pos
            )
        pattern = node.value

        def pred_like(row: Any) -> bool:
            v = get(row)
            return isinstance(v, str) and _like(pattern, v)

        return pred_like
    if isinstance(node.value, DateLiteral):
        bounds = _literal_range(node.value, ftype, name, ctx)
        return lambda row: _in_range(get(row), bounds, op)
    literal = norm(_coerce(node.value, ftype, name, node.value_pos), ftype)
    if literal is None and op not in ("=", "!="):
        raise SoqlError(f"null can only be compared with = or != (field '{name}')", pos=node.pos)

    def pred_cmp(row: Any) -> bool:
        v = norm(get(row), ftype)
        if op == "=":
            return bool(v == literal)
        if op == "!=":
            return bool(v != literal)
        if v is None:
            return False
        try:
            if op == "<":
                return bool(v < literal)
            if op == "<=":
                return bool(v <= literal)
            if op == ">":
                return bool(v > literal)
            return bool(v >= literal)
        except TypeError:
            return False

    return pred_cmp


def sort_rows(rows: list[Any], keys: list[tuple[Ref, bool, bool | None]]) -> list[Any]:
    """Stable multi-key sort on (ref, descending, nulls_last); nulls first for ASC and last for
    DESC unless told otherwise."""
    result = list(rows)
    for ref, descending, nulls_last in reversed(keys):
        last = nulls_last if nulls_last is not None else descending
        present = [r for r in result if ref.get(r) is not None]
        absent = [r for r in result if ref.get(r) is None]
        present.sort(key=lambda r, ref=ref: norm(ref.get(r), ref.ftype), reverse=descending)
        result = present + absent if last else absent + present
    return result


def date_function(name: str, base: Ref, zone: ZoneInfo | None, pos: int) -> Ref:
    """``CALENDAR_YEAR(CreatedDate)`` and friends over a date or datetime field. Datetimes are
    read in UTC, as Salesforce's date functions do, unless wrapped in ``convertTimezone()``
    (then in the org's zone, ``zone``). Fiscal functions follow the calendar year."""
    if base.ftype not in ("date", "datetime") or (
        name in ("DAY_ONLY", "HOUR_IN_DAY") and base.ftype != "datetime"
    ):
        raise SoqlError(
            f"{name} can't be applied to field '{base.name}' of type {base.ftype}", pos=pos
        )
    name = name.replace("FISCAL_", "CALENDAR_")

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if name == "HOUR_IN_DAY":
                return (value.astimezone(zone) if zone else value).hour
            value = (value.astimezone(zone) if zone else value).date()
        yday = value.timetuple().tm_yday
        return {
            "CALENDAR_MONTH": value.month,
            "CALENDAR_QUARTER": (value.month - 1) // 3 + 1,
            "CALENDAR_YEAR": value.year,
            "DAY_IN_MONTH": value.day,
            "DAY_IN_WEEK": value.isoweekday() % 7 + 1,  # 1 = Sunday
            "DAY_IN_YEAR": yday,
            "DAY_ONLY": value,
            "WEEK_IN_MONTH": (value.day - 1) // 7 + 1,
            "WEEK_IN_YEAR": (yday - 1) // 7 + 1,
        }[name]

    ftype = "date" if name == "DAY_ONLY" else "int"
    return Ref(name, ftype, lambda row: apply(base.get(row)), base.hops, (name, *base.key))
