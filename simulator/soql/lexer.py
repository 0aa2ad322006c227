"""SOQL tokens: strings with Salesforce's backslash escapes, numbers, date and datetime literals,
operators, punctuation, keywords and (dotted) identifiers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from simulator.soql.errors import SoqlError

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
    "GROUP",
    "HAVING",
}

_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?![\w.])")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# Salesforce's documented escapes (either case for the letters); \% and \_ stay escaped so that
# LIKE can tell a literal % or _ from a wildcard. Any other backslash sequence is an error.
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "N": "\n", "t": "\t", "T": "\t",
            "r": "\r", "R": "\r", "b": "\b", "B": "\b", "f": "\f", "F": "\f", "%": "\\%",
            "_": "\\_"}  # fmt: skip

_EOF_IN_STRING = "line 1:{n} mismatched character '<EOF>' expecting '''"


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
                    raise SoqlError(_EOF_IN_STRING.format(n=n), pos=n)
                c = text[j]
                if c == "\\":
                    if j + 1 >= n:
                        raise SoqlError(_EOF_IN_STRING.format(n=n), pos=n)
                    esc = text[j + 1]
                    if esc not in _ESCAPES:
                        raise SoqlError(
                            f"Invalid string literal '{text[i + 1 : j + 2]}'. Illegal character "
                            f"sequence '\\{esc}' in string literal.",
                            pos=i,
                        )
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
                raise SoqlError(f"invalid date: {m.group()}", pos=i) from exc
            i = m.end()
            continue
        if ch.isdigit() or (ch in "+-." and i + 1 < n and (text[i + 1].isdigit())):
            m = _NUMBER_RE.match(text, i)
            if not m:
                raise SoqlError(f"unexpected token: '{text[i : i + 10]}'", pos=i)
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
        raise SoqlError(f"line 1:{i} no viable alternative at character '{ch}'", pos=i)
    tokens.append(Token("eof", None, n))
    return tokens
