"""A subset of SOSL for ``GET /search?q=``: ``FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS]
[RETURNING Object[(fields [WHERE ...] [ORDER BY ...] [LIMIT n])], ...] [LIMIT n]``.

A term is one or more words (all must match, or any when joined by ``OR``), each matched as a
whole word, case-insensitively, with ``*`` (any characters) and ``?`` (one character) as
wildcards; a quoted ``"phrase"`` matches as written. The part inside ``Object(...)`` is run as
SOQL over the matching records, so it supports what the SOQL executor does. Without RETURNING
every object is searched and only ``Id`` comes back. Results keep RETURNING's order.
"""

from __future__ import annotations

import re
from typing import Any

from simulator import schema, soql
from simulator.errors import SfError
from simulator.soql.executor import Executor

TEXT_TYPES = ("string", "email", "phone", "textarea", "url", "picklist", "combobox")
NAME_FIELDS = ("Name", "FirstName", "LastName", "Company", "Subject", "Username")
_FIND = re.compile(
    r"\s*FIND\s*\{((?:[^}\\]|\\.)*)\}\s*(?:IN\s+(ALL|NAME|EMAIL|PHONE)\s+FIELDS\s*)?(.*)$",
    re.IGNORECASE | re.DOTALL,
)
_TAIL_KEYWORD = re.compile(r"\s(WHERE|ORDER\s+BY|LIMIT|OFFSET)\s", re.IGNORECASE)


def _malformed(message: str) -> SfError:
    return SfError(400, "MALFORMED_SEARCH", message)


def _split_top(text: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, []
    for ch in text:
        if ch == "'" and (not current or current[-1] != "\\"):
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _matchers(term: str) -> tuple[list[re.Pattern[str]], bool]:
    term = re.sub(r"\\(.)", r"\1", term).strip()
    phrases = re.findall(r'"([^"]*)"|(\S+)', term)
    words = [quoted or bare for quoted, bare in phrases]
    any_of = any(w.upper() == "OR" for w in words)
    words = [w for w in words if w.upper() not in ("OR", "AND")]
    if not words or all(len(w.replace("*", "").replace("?", "")) < 2 for w in words):
        raise _malformed("search term must be longer than one character")
    patterns = []
    for word in words:
        body = "".join(
            r"\w*" if ch == "*" else r"\w" if ch == "?" else re.escape(ch) for ch in word
        )
        patterns.append(re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE))
    return patterns, any_of


class _Matching:
    """A record source that only shows the records matching the search term."""

    def __init__(self, state: Any, patterns: list[re.Pattern[str]], any_of: bool, scope: str):
        self.state = state
        self.patterns = patterns
        self.any_of = any_of
        self.scope = scope

    def _fields(self, obj: str) -> list[str]:
        fields = {**schema.all_fields(obj), **{f: "string" for f in self.state.custom_fields[obj]}}
        if self.scope == "NAME":
            return [f for f in NAME_FIELDS if f in fields]
        wanted = {"EMAIL": ("email",), "PHONE": ("phone",)}.get(self.scope, TEXT_TYPES)
        return [f for f, t in fields.items() if t in wanted]

    def rows(self, obj: str, include_deleted: bool) -> list[dict[str, Any]]:
        fields = self._fields(obj)
        out = []
        for row in self.state.rows(obj, False):
            text = " ".join(str(row[f]) for f in fields if isinstance(row.get(f), str))
            hits = [bool(p.search(text)) for p in self.patterns]
            if any(hits) if self.any_of else all(hits):
                out.append(row)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)


def search(state: Any, text: str, version: str) -> dict[str, Any]:
    """Run a SOSL search; returns ``{"searchRecords": [...]}``."""
    match = _FIND.match(text or "")
    if match is None:
        raise _malformed("Search query must start with FIND {term}")
    term, scope, rest = match.group(1), (match.group(2) or "ALL").upper(), match.group(3).strip()
    patterns, any_of = _matchers(term)
    limit = 2000
    returning: list[str] = []
    tail = re.search(r"\bLIMIT\s+(\d+)\s*$", rest, re.IGNORECASE)
    if tail and rest[: tail.start()].count("(") == rest[: tail.start()].count(")"):
        limit = int(tail.group(1))
        rest = rest[: tail.start()].strip()
    if rest:
        head = re.match(r"RETURNING\s+(.*)$", rest, re.IGNORECASE | re.DOTALL)
        if head is None:
            raise _malformed(f"unexpected token: {rest.split()[0]}")
        returning = _split_top(head.group(1))
    if not returning:
        returning = [o for o in schema.object_names() if o != "User"]
    source = _Matching(state, patterns, any_of, scope)
    records: list[dict[str, Any]] = []
    for spec in returning:
        spec_match = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", spec.strip(), re.DOTALL)
        if spec_match is None:
            raise _malformed(f"unexpected token in RETURNING: {spec}")
        obj, inner = spec_match.group(1), (spec_match.group(2) or "Id").strip()
        split = _TAIL_KEYWORD.search(" " + inner + " ")
        fields, clauses = (inner[: split.start()], inner[split.start() :]) if split else (inner, "")
        query_text = f"SELECT {fields.strip() or 'Id'} FROM {obj} {clauses}".strip()
        try:
            query = soql.parse(query_text)
            found, _ = Executor(source, state.soql_context(), version).run(query, False)
        except soql.SoqlError as exc:
            raise SfError(400, exc.error_code, exc.salesforce_message(query_text)) from None
        records.extend(found)
    return {"searchRecords": records[:limit]}
