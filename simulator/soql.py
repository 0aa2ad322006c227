"""A real subset of SOQL: tokenizer, recursive-descent parser and evaluator.

Supported: ``SELECT f1, f2 | COUNT() FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``. Conditions use AND / OR / NOT and parentheses
with ``= != <> < <= > >= LIKE IN NOT IN``; values are strings (with backslash escapes), numbers,
TRUE / FALSE, NULL, date literals (2026-01-01), datetime literals (2026-01-01T00:00:00Z,
2026-01-01T00:00:00.000+0000) and TODAY / YESTERDAY / TOMORROW.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class SoqlError(Exception):
    """A query the simulator cannot accept; ``error_code`` is Salesforce's errorCode."""

    def __init__(self, message: str, error_code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "LIKE",
    "IN",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "NULL",
    "TRUE",
    "FALSE",
    "COUNT",
}

_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?![\w.])")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b",
            "f": "\f", "%": "\\%", "_": "\\_"}  # fmt: skip


@dataclass
class Token:
    kind: str  # ident, keyword, string, number, datetime, date, op, punct, eof
    value: Any
    pos: int


def parse_datetime(text: str) -> dt.datetime:
    """Parse 2026-01-01T00:00:00Z / 2026-01-01T00:00:00.000+0000 / ...+00:00 to an aware UTC
    datetime."""
    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?",
        text.strip(),
    )
    if not m:
        raise ValueError(f"invalid datetime: {text}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    offset = dt.timedelta(0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    value = dt.datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
        tzinfo=dt.timezone(offset),
    )  # fmt: skip
    return value.astimezone(dt.UTC)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "'":
            j = i + 1
            buf = []
            while True:
                if j >= n:
                    raise SoqlError(f"unterminated string literal at position {i}")
                c = text[j]
                if c == "\\":
                    if j + 1 >= n:
                        raise SoqlError(f"unterminated string literal at position {i}")
                    esc = text[j + 1]
                    if esc not in _ESCAPES:
                        raise SoqlError(f"invalid escape sequence \\{esc} at position {j}")
                    buf.append(_ESCAPES[esc])
                    j += 2
                    continue
                if c == "'":
                    break
                buf.append(c)
                j += 1
            tokens.append(Token("string", "".join(buf), i))
            i = j + 1
            continue
        m = _DATETIME_RE.match(text, i)
        if m:
            tokens.append(Token("datetime", parse_datetime(m.group()), i))
            i = m.end()
            continue
        m = _DATE_RE.match(text, i)
        if m:
            try:
                tokens.append(Token("date", dt.date.fromisoformat(m.group()), i))
            except ValueError as exc:
                raise SoqlError(f"invalid date literal {m.group()}") from exc
            i = m.end()
            continue
        if ch.isdigit() or (ch in "+-." and i + 1 < n and (text[i + 1].isdigit())):
            m = _NUMBER_RE.match(text, i)
            if not m:
                raise SoqlError(f"unexpected token at position {i}: {text[i : i + 10]!r}")
            raw = m.group()
            value: Any = float(raw) if "." in raw else int(raw)
            tokens.append(Token("number", value, i))
            i = m.end()
            continue
        if text.startswith(("!=", "<>", "<=", ">="), i):
            tokens.append(Token("op", "!=" if text[i : i + 2] == "<>" else text[i : i + 2], i))
            i += 2
            continue
        if ch in "=<>":
            tokens.append(Token("op", ch, i))
            i += 1
            continue
        if ch in "(),:":
            tokens.append(Token("punct", ch, i))
            i += 1
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            word = m.group()
            if word.upper() in KEYWORDS:
                tokens.append(Token("keyword", word.upper(), i))
            else:
                tokens.append(Token("ident", word, i))
            i = m.end()
            continue
        raise SoqlError(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("eof", None, n))
    return tokens


# ---------------------------------------------------------------- AST


@dataclass
class Comparison:
    field: str
    op: str  # = != < <= > >= LIKE IN NOTIN
    value: Any  # literal, or list of literals for IN


@dataclass
class BoolOp:
    op: str  # AND, OR
    items: list[Any]


@dataclass
class Not:
    item: Any


@dataclass
class OrderItem:
    field: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    fields: list[str]
    sobject: str
    count_only: bool = False
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "keyword" and tok.value in words

    def expect_keyword(self, word: str) -> None:
        tok = self.next()
        if tok.kind != "keyword" or tok.value != word:
            raise SoqlError(f"expecting '{word}', unexpected token: '{_show(tok)}'")

    def expect_punct(self, ch: str) -> None:
        tok = self.next()
        if tok.kind != "punct" or tok.value != ch:
            raise SoqlError(f"expecting '{ch}', unexpected token: '{_show(tok)}'")

    def ident(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise SoqlError(f"unexpected token: '{_show(tok)}'")
        return tok.value

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields: list[str] = []
        count_only = False
        if self.at_keyword("COUNT"):
            self.next()
            self.expect_punct("(")
            self.expect_punct(")")
            count_only = True
        else:
            fields.append(self.ident())
            while self.peek().kind == "punct" and self.peek().value == ",":
                self.next()
                fields.append(self.ident())
        self.expect_keyword("FROM")
        query = Query(fields=fields, sobject=self.ident(), count_only=count_only)
        if self.at_keyword("WHERE"):
            self.next()
            query.where = self.parse_or()
        if self.at_keyword("ORDER"):
            self.next()
            self.expect_keyword("BY")
            query.order_by.append(self.parse_order_item())
            while self.peek().kind == "punct" and self.peek().value == ",":
                self.next()
                query.order_by.append(self.parse_order_item())
        if self.at_keyword("LIMIT"):
            self.next()
            query.limit = self.parse_count("LIMIT")
        if self.at_keyword("OFFSET"):
            self.next()
            query.offset = self.parse_count("OFFSET")
        tok = self.peek()
        if tok.kind != "eof":
            raise SoqlError(f"unexpected token: '{_show(tok)}'")
        return query

    def parse_count(self, what: str) -> int:
        tok = self.next()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise SoqlError(f"{what} must be a non-negative integer, found '{_show(tok)}'")
        return tok.value

    def parse_order_item(self) -> OrderItem:
        item = OrderItem(self.ident())
        if self.at_keyword("ASC", "DESC"):
            item.descending = self.next().value == "DESC"
        if self.at_keyword("NULLS"):
            self.next()
            tok = self.next()
            if tok.kind != "keyword" or tok.value not in ("FIRST", "LAST"):
                raise SoqlError(f"expecting FIRST or LAST, unexpected token: '{_show(tok)}'")
            item.nulls_last = tok.value == "LAST"
        return item

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while self.at_keyword("OR"):
            self.next()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def parse_and(self) -> Any:
        items = [self.parse_not()]
        while self.at_keyword("AND"):
            self.next()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def parse_not(self) -> Any:
        if self.at_keyword("NOT"):
            self.next()
            return Not(self.parse_not())
        tok = self.peek()
        if tok.kind == "punct" and tok.value == "(":
            self.next()
            inner = self.parse_or()
            self.expect_punct(")")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        name = self.ident()
        tok = self.next()
        if tok.kind == "op":
            return Comparison(name, tok.value, self.parse_value())
        if tok.kind == "keyword" and tok.value == "LIKE":
            value = self.parse_value()
            if not isinstance(value, str):
                raise SoqlError("LIKE needs a string value")
            return Comparison(name, "LIKE", value)
        if tok.kind == "keyword" and tok.value == "IN":
            return Comparison(name, "IN", self.parse_list())
        if tok.kind == "keyword" and tok.value == "NOT" and self.at_keyword("IN"):
            self.next()
            return Comparison(name, "NOTIN", self.parse_list())
        raise SoqlError(f"unexpected token: '{_show(tok)}'")

    def parse_list(self) -> list[Any]:
        self.expect_punct("(")
        values = [self.parse_value()]
        while self.peek().kind == "punct" and self.peek().value == ",":
            self.next()
            values.append(self.parse_value())
        self.expect_punct(")")
        return values

    def parse_value(self) -> Any:
        tok = self.next()
        if tok.kind in ("string", "number", "datetime", "date"):
            return tok.value
        if tok.kind == "keyword" and tok.value in ("TRUE", "FALSE"):
            return tok.value == "TRUE"
        if tok.kind == "keyword" and tok.value == "NULL":
            return None
        if tok.kind == "ident" and tok.value.upper() in ("TODAY", "YESTERDAY", "TOMORROW"):
            today = dt.datetime.now(dt.UTC).date()
            delta = {"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}[tok.value.upper()]
            return today + dt.timedelta(days=delta)
        raise SoqlError(f"unexpected token: '{_show(tok)}'")


def _show(tok: Token) -> str:
    if tok.kind == "eof":
        return "<EOF>"
    if tok.kind == "string":
        return f"'{tok.value}'"
    return str(tok.value)


def parse(text: str) -> Query:
    if not text or not text.strip():
        raise SoqlError("query is empty")
    return _Parser(text).parse()


# ---------------------------------------------------------------- evaluation

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
