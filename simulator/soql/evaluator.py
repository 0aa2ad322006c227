"""Evaluate a parsed WHERE / ORDER BY over stored records (dicts keyed by canonical field name)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from simulator.soql.errors import SoqlError
from simulator.soql.parser import BoolOp, Comparison, Not, OrderItem

FieldResolver = Callable[[str], tuple[str, str]]
"""Maps a field name as written to (canonical name, type); raises SoqlError if unknown."""


def _coerce(value: Any, ftype: str, field_name: str) -> Any:
    """Bring a literal to the field's type so that comparisons are meaningful."""
    if value is None or ftype == "anyType":
        return value
    if ftype == "datetime":
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        raise SoqlError(
            f"value of filter criterion for field '{field_name}' must be of type dateTime "
            "and should not be enclosed in quotes",
            "INVALID_FIELD",
        )
    if ftype == "date":
        if isinstance(value, dt.datetime):
            raise SoqlError(
                f"value of filter criterion for field '{field_name}' must be of type date "
                "and should not be enclosed in quotes",
                "INVALID_FIELD",
            )
        if isinstance(value, dt.date):
            return value
        raise SoqlError(
            f"value of filter criterion for field '{field_name}' must be of type date "
            "and should not be enclosed in quotes",
            "INVALID_FIELD",
        )
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        raise SoqlError(
            f"value of filter criterion for field '{field_name}' must be of type boolean "
            "and should not be enclosed in quotes",
            "INVALID_FIELD",
        )
    if ftype in ("double", "int", "currency", "percent"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise SoqlError(
            f"value of filter criterion for field '{field_name}' must be of type double "
            "and should not be enclosed in quotes",
            "INVALID_FIELD",
        )
    # text-like, id and reference fields
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.datetime, dt.date, bool, int, float)):
        raise SoqlError(
            f"value of filter criterion for field '{field_name}' must be of type string "
            "and should be enclosed in quotes",
            "INVALID_FIELD",
        )
    return value


def _norm(value: Any, ftype: str) -> Any:
    """Normalise a stored or literal value for comparison (text compares case-insensitively,
    ids by their 18-character form)."""
    if isinstance(value, str):
        if ftype in ("id", "reference"):
            if len(value) == 15:
                from simulator.ids import to18

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


def compile_where(node: Any, resolve: FieldResolver) -> Callable[[dict[str, Any]], bool]:
    """Turn a WHERE tree into a predicate over stored records (dicts keyed by canonical name)."""
    if node is None:
        return lambda rec: True
    if isinstance(node, BoolOp):
        parts = [compile_where(item, resolve) for item in node.items]
        if node.op == "AND":
            return lambda rec: all(p(rec) for p in parts)
        return lambda rec: any(p(rec) for p in parts)
    if isinstance(node, Not):
        inner = compile_where(node.item, resolve)
        return lambda rec: not inner(rec)
    assert isinstance(node, Comparison)
    name, ftype = resolve(node.field)
    op = node.op
    if op in ("IN", "NOTIN"):
        wanted = {_norm(_coerce(v, ftype, name), ftype) for v in node.value}

        def pred_in(rec: dict[str, Any]) -> bool:
            hit = _norm(rec.get(name), ftype) in wanted
            return hit if op == "IN" else not hit

        return pred_in
    if op == "LIKE":
        if ftype not in ("string", "email", "textarea", "picklist", "phone", "url", "id",
                         "reference"):  # fmt: skip
            raise SoqlError(f"invalid operator on field '{name}' of type {ftype}", "INVALID_FIELD")
        pattern = node.value

        def pred_like(rec: dict[str, Any]) -> bool:
            v = rec.get(name)
            return isinstance(v, str) and _like(pattern, v)

        return pred_like
    literal = _norm(_coerce(node.value, ftype, name), ftype)
    if literal is None and op not in ("=", "!="):
        raise SoqlError(f"null can only be compared with = or != (field '{name}')")

    def pred_cmp(rec: dict[str, Any]) -> bool:
        v = _norm(rec.get(name), ftype)
        if op == "=":
            return v == literal
        if op == "!=":
            return v != literal
        if v is None:
            return False
        try:
            if op == "<":
                return v < literal
            if op == "<=":
                return v <= literal
            if op == ">":
                return v > literal
            return v >= literal
        except TypeError:
            return False

    return pred_cmp


def sort_records(
    records: list[dict[str, Any]], order_by: list[OrderItem], resolve: FieldResolver
) -> list[dict[str, Any]]:
    """Stable multi-key sort; nulls first for ASC and last for DESC unless told otherwise."""
    result = list(records)
    for item in reversed(order_by):
        name, ftype = resolve(item.field)
        nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
        present = [r for r in result if r.get(name) is not None]
        absent = [r for r in result if r.get(name) is None]
        present.sort(key=lambda r, n=name, t=ftype: _norm(r.get(n), t), reverse=item.descending)
        result = present + absent if nulls_last else absent + present
    return result
