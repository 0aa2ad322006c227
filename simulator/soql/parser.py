"""The SOQL syntax tree and a recursive-descent parser that builds it from tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from simulator.soql.errors import SoqlError
from simulator.soql.lexer import Token, tokenize


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
