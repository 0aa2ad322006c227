"""The SOQL syntax tree and a recursive-descent parser that builds it from tokens.

Grammar (the subset served)::

    query     := SELECT item (, item)* FROM Object [USING SCOPE scope] [WHERE cond]
                 [WITH SECURITY_ENFORCED|USER_MODE|SYSTEM_MODE] [GROUP BY path (, path)*]
                 [HAVING cond] [ORDER BY order (, order)*] [LIMIT n] [OFFSET n]
                 [FOR VIEW|REFERENCE|UPDATE]          (scope, WITH and FOR change nothing here)
    item      := path | agg [alias] | ( query ) | FIELDS(STANDARD|ALL|CUSTOM) | COUNT()
    agg       := COUNT(path) | COUNT_DISTINCT(path) | MIN(path) | MAX(path) | SUM(path) | AVG(path)
    cond      := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | ( cond ) | cmp
    cmp       := (path | agg) op value | path [NOT] IN ( values | query ) | path LIKE 'text'
    value     := 'text' | number | TRUE | FALSE | NULL | 2026-01-01 | 2026-01-01T00:00:00Z
                 | TODAY | LAST_N_DAYS:n | ...   (see ``simulator.soql.dates``)

Every node keeps ``pos``, the offset of its first character, for Salesforce's
``ERROR at Row:1:Column:N`` messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.soql.dates import is_date_literal, needs_number
from simulator.soql.errors import SoqlError
from simulator.soql.lexer import Token, tokenize

AGGREGATES = ("COUNT", "COUNT_DISTINCT", "MIN", "MAX", "SUM", "AVG")
DATE_FUNCTIONS = (
    "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK",
    "DAY_IN_YEAR", "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY",
    "WEEK_IN_MONTH", "WEEK_IN_YEAR",
)  # fmt: skip
SCOPES = ("EVERYTHING", "MINE", "MY_TERRITORY", "MY_TEAM_TERRITORY", "TEAM", "DELEGATED")


@dataclass
class FieldPath:
    path: str  # as written: "Name", "Account.Name", "Account.Owner.Email"
    pos: int = 0
    function: str | None = None  # a date function around it: CALENDAR_YEAR(CreatedDate)
    local: bool = False  # convertTimezone(...) inside the date function: the org's zone
    alias: str | None = None


@dataclass
class Aggregate:
    func: str  # one of AGGREGATES
    arg: FieldPath | None  # None only for COUNT()
    alias: str | None = None
    pos: int = 0


@dataclass
class FieldsFunction:
    kind: str  # STANDARD, ALL, CUSTOM
    pos: int = 0


@dataclass
class SubQuery:
    query: Query
    pos: int = 0


@dataclass
class DateLiteral:
    name: str  # TODAY, LAST_N_DAYS, ...
    n: int | None = None
    pos: int = 0


@dataclass
class Comparison:
    field: str  # the path as written (kept a string: product tests read it)
    op: str  # = != < <= > >= LIKE IN NOTIN
    value: Any  # literal, DateLiteral, list of those for IN, or SubQuery (semi-join)
    pos: int = 0
    aggregate: Aggregate | None = None  # HAVING COUNT(Id) > 1: the left side is an aggregate
    value_pos: int = 0
    function: str | None = None  # WHERE CALENDAR_YEAR(CreatedDate) = 2026
    local: bool = False


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
    pos: int = 0
    aggregate: Aggregate | None = None
    function: str | None = None
    local: bool = False


@dataclass
class Query:
    fields: list[str]  # the plain field paths of the SELECT list, in order
    sobject: str
    count_only: bool = False
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    items: list[Any] = field(default_factory=list)  # FieldPath/Aggregate/SubQuery/FieldsFunction
    sobject_pos: int = 0
    group_by: list[FieldPath] = field(default_factory=list)
    having: Any = None
    limit_pos: int = 0

    @property
    def is_aggregate(self) -> bool:
        return bool(self.group_by) or any(isinstance(i, Aggregate) for i in self.items)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def fail(self, tok: Token, message: str | None = None) -> SoqlError:
        return SoqlError(message or f"unexpected token: {_show(tok)}", pos=tok.pos)

    def at_keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "keyword" and tok.value in words

    def at_punct(self, ch: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "punct" and tok.value == ch

    def expect_keyword(self, word: str) -> Token:
        tok = self.next()
        if tok.kind != "keyword" or tok.value != word:
            raise self.fail(tok, f"expecting '{word}', unexpected token: {_show(tok)}")
        return tok

    def expect_punct(self, ch: str) -> Token:
        tok = self.next()
        if tok.kind != "punct" or tok.value != ch:
            raise self.fail(tok, f"expecting '{ch}', unexpected token: {_show(tok)}")
        return tok

    def ident(self) -> Token:
        tok = self.next()
        if tok.kind != "ident":
            raise self.fail(tok)
        return tok

    # ------------------------------------------------------------ query

    def parse(self, nested: bool = False) -> Query:
        self.expect_keyword("SELECT")
        items: list[Any] = []
        count_only = False
        if self.at_keyword("COUNT") and self.at_punct("(", 1) and self.at_punct(")", 2):
            self.i += 3
            count_only = True
        else:
            items.append(self.parse_item(nested))
            while self.at_punct(","):
                self.next()
                items.append(self.parse_item(nested))
        self.expect_keyword("FROM")
        tok = self.ident()
        query = Query(
            fields=[i.path for i in items if isinstance(i, FieldPath)],
            sobject=tok.value,
            count_only=count_only,
            items=items,
            sobject_pos=tok.pos,
        )
        if self.at_word("USING"):
            self.next()
            self.expect_word("SCOPE")
            self.expect_word(*SCOPES)
        if self.at_keyword("WHERE"):
            self.next()
            query.where = self.parse_or()
        if self.at_word("WITH"):
            # Sharing and field-level security: every field is readable to the simulated user.
            self.next()
            self.expect_word("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE")
        if self.at_keyword("GROUP"):
            self.next()
            self.expect_keyword("BY")
            query.group_by.append(self.parse_path())
            while self.at_punct(","):
                self.next()
                query.group_by.append(self.parse_path())
        if self.at_keyword("HAVING"):
            having = self.next()
            if not query.is_aggregate:
                raise self.fail(having, "HAVING needs GROUP BY or an aggregate in the SELECT list")
            query.having = self.parse_or()
        if self.at_keyword("ORDER"):
            self.next()
            self.expect_keyword("BY")
            query.order_by.append(self.parse_order_item())
            while self.at_punct(","):
                self.next()
                query.order_by.append(self.parse_order_item())
        if self.at_keyword("LIMIT"):
            query.limit_pos = self.next().pos
            query.limit = self.parse_count("LIMIT")
        if self.at_keyword("OFFSET"):
            self.next()
            query.offset = self.parse_count("OFFSET")
        if self.at_word("FOR"):
            self.next()
            self.expect_word("VIEW", "REFERENCE", "UPDATE")
        tok = self.peek()
        if not nested and tok.kind != "eof":
            raise self.fail(tok)
        return query

    def at_word(self, word: str) -> bool:
        """An identifier used as a keyword only in one place (WITH, USING SCOPE, FOR)."""
        tok = self.peek()
        return tok.kind == "ident" and str(tok.value).upper() == word

    def expect_word(self, *words: str) -> Token:
        tok = self.next()
        if tok.kind != "ident" or str(tok.value).upper() not in words:
            raise self.fail(tok, f"expecting {' or '.join(words)}, unexpected token: {_show(tok)}")
        return tok

    def parse_item(self, nested: bool) -> Any:
        tok = self.peek()
        if tok.kind == "punct" and tok.value == "(":
            if nested:
                raise self.fail(tok, "Nesting of semi join sub-selects is not supported")
            self.next()
            sub = SubQuery(self.parse(nested=True), pos=tok.pos)
            self.expect_punct(")")
            return sub
        if tok.kind == "ident" and tok.value.upper() == "FIELDS" and self.at_punct("(", 1):
            self.i += 2
            kind = self.next()
            if kind.kind != "ident" or kind.value.upper() not in ("STANDARD", "ALL", "CUSTOM"):
                raise self.fail(kind, f"unexpected token: {_show(kind)}")
            self.expect_punct(")")
            return FieldsFunction(kind.value.upper(), pos=tok.pos)
        if self.at_aggregate():
            agg = self.parse_aggregate()
            if self.peek().kind == "ident":
                agg.alias = self.next().value
            return agg
        path = self.parse_path()
        if path.function and self.peek().kind == "ident":
            path.alias = self.next().value
        return path

    def at_aggregate(self) -> bool:
        tok = self.peek()
        return (
            tok.kind in ("keyword", "ident")
            and str(tok.value).upper() in AGGREGATES
            and self.at_punct("(", 1)
        )

    def parse_aggregate(self) -> Aggregate:
        tok = self.next()
        func = str(tok.value).upper()
        self.expect_punct("(")
        if self.at_punct(")"):
            if func != "COUNT":
                raise self.fail(self.peek())
            self.next()
            return Aggregate(func, None, pos=tok.pos)
        arg = self.parse_path()
        self.expect_punct(")")
        return Aggregate(func, arg, pos=tok.pos)

    def parse_path(self) -> FieldPath:
        tok = self.ident()
        if str(tok.value).upper() not in DATE_FUNCTIONS or not self.at_punct("("):
            return FieldPath(tok.value, pos=tok.pos)
        self.next()
        local = False
        if self.at_word("CONVERTTIMEZONE") and self.at_punct("(", 1):
            self.i += 2
            local = True
        inner = self.ident()
        if local:
            self.expect_punct(")")
        self.expect_punct(")")
        return FieldPath(inner.value, pos=tok.pos, function=str(tok.value).upper(), local=local)

    def parse_count(self, what: str) -> int:
        tok = self.next()
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
            raise self.fail(tok, f"{what} must be a non-negative integer, found: {_show(tok)}")
        return tok.value

    def parse_order_item(self) -> OrderItem:
        if self.at_aggregate():
            agg = self.parse_aggregate()
            item = OrderItem(agg.arg.path if agg.arg else "", pos=agg.pos, aggregate=agg)
        else:
            path = self.parse_path()
            item = OrderItem(path.path, pos=path.pos, function=path.function, local=path.local)
        if self.at_keyword("ASC", "DESC"):
            item.descending = self.next().value == "DESC"
        if self.at_keyword("NULLS"):
            self.next()
            tok = self.next()
            if tok.kind != "keyword" or tok.value not in ("FIRST", "LAST"):
                raise self.fail(tok, f"expecting FIRST or LAST, unexpected token: {_show(tok)}")
            item.nulls_last = tok.value == "LAST"
        return item

    # ------------------------------------------------------------ conditions

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
        if self.at_punct("("):
            self.next()
            inner = self.parse_or()
            self.expect_punct(")")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        aggregate = None
        if self.at_aggregate():
            aggregate = self.parse_aggregate()
            name, pos = (aggregate.arg.path if aggregate.arg else ""), aggregate.pos
        else:
            path = self.parse_path()
            name, pos = path.path, path.pos
        tok = self.next()
        value_pos = self.peek().pos
        if tok.kind == "op":
            cmp = Comparison(name, tok.value, self.parse_value(), pos, aggregate, value_pos)
            if aggregate is None:
                cmp.function, cmp.local = path.function, path.local
            return cmp
        if tok.kind == "keyword" and tok.value == "LIKE":
            value = self.parse_value()
            if not isinstance(value, str):
                raise SoqlError("LIKE needs a string value", pos=value_pos)
            return Comparison(name, "LIKE", value, pos, aggregate, value_pos)
        if tok.kind == "keyword" and tok.value == "IN":
            return Comparison(name, "IN", self.parse_list(), pos, aggregate, value_pos)
        if tok.kind == "keyword" and tok.value == "NOT" and self.at_keyword("IN"):
            self.next()
            value_pos = self.peek().pos
            return Comparison(name, "NOTIN", self.parse_list(), pos, aggregate, value_pos)
        raise self.fail(tok)

    def parse_list(self) -> Any:
        start = self.expect_punct("(")
        if self.at_keyword("SELECT"):
            sub = SubQuery(self.parse(nested=True), pos=start.pos + 1)
            self.expect_punct(")")
            return sub
        values = [self.parse_value()]
        while self.at_punct(","):
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
        if tok.kind == "ident" and is_date_literal(tok.value):
            name = tok.value.upper()
            if not needs_number(name):
                return DateLiteral(name, pos=tok.pos)
            if not self.at_punct(":"):
                raise self.fail(self.peek(), f"expecting ':', unexpected token: {_show(tok)}")
            self.next()
            number = self.next()
            if number.kind != "number" or not isinstance(number.value, int) or number.value < 0:
                raise self.fail(number, f"unexpected token: {_show(number)}")
            return DateLiteral(name, number.value, pos=tok.pos)
        raise self.fail(tok)


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
