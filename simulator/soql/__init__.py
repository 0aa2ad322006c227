"""A real subset of SOQL: tokenizer (``lexer``), recursive-descent parser (``parser``), date
literals (``dates``), predicates and sorting (``evaluator``) and the executor that runs a query
against a record source (``executor``: relationships, subqueries, aggregates, output shape).

Supported: ``SELECT`` fields, parent relationship paths (``Account.Owner.Email``), child
subqueries (``(SELECT LastName FROM Contacts)``), ``FIELDS(STANDARD|ALL|CUSTOM)``, ``COUNT()``
and the aggregates ``COUNT``/``COUNT_DISTINCT``/``MIN``/``MAX``/``SUM``/``AVG`` with aliases,
``FROM Object [WHERE cond] [GROUP BY f, ...] [HAVING cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``. Conditions use AND / OR / NOT and parentheses
with ``= != <> < <= > >= LIKE IN NOT IN`` (IN also takes a semi-join sub-select); values are
strings (with Salesforce's backslash escapes), numbers, TRUE / FALSE, NULL, dates
(2026-01-01), datetimes (2026-01-01T00:00:00Z, 2026-01-01T00:00:00.000+0000) and date literals
(TODAY, LAST_N_DAYS:n, THIS_MONTH, ...); date functions (CALENDAR_YEAR(CloseDate), ...) in
aggregate queries and conditions. USING SCOPE, WITH SECURITY_ENFORCED/USER_MODE and FOR VIEW
are accepted and change nothing. Errors carry the position Salesforce's
``ERROR at Row:1:Column:N`` messages point at.
"""

from simulator.soql.errors import SoqlError
from simulator.soql.evaluator import Context, FieldResolver, Ref, compile_where, sort_rows
from simulator.soql.lexer import KEYWORDS, Token, parse_datetime, tokenize
from simulator.soql.parser import (
    Aggregate,
    BoolOp,
    Comparison,
    DateLiteral,
    FieldPath,
    Not,
    OrderItem,
    Query,
    SubQuery,
    parse,
)

__all__ = [
    "KEYWORDS",
    "Aggregate",
    "BoolOp",
    "Comparison",
    "Context",
    "DateLiteral",
    "FieldPath",
    "FieldResolver",
    "Not",
    "OrderItem",
    "Query",
    "Ref",
    "SoqlError",
    "SubQuery",
    "Token",
    "compile_where",
    "parse",
    "parse_datetime",
    "sort_rows",
    "tokenize",
]
