"""A real subset of SOQL: tokenizer (``lexer``), recursive-descent parser (``parser``) and
evaluator over stored records (``evaluator``).

Supported: ``SELECT f1, f2 | COUNT() FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]``. Conditions use AND / OR / NOT and parentheses
with ``= != <> < <= > >= LIKE IN NOT IN``; values are strings (with backslash escapes), numbers,
TRUE / FALSE, NULL, date literals (2026-01-01), datetime literals (2026-01-01T00:00:00Z,
2026-01-01T00:00:00.000+0000) and TODAY / YESTERDAY / TOMORROW.
"""

from simulator.soql.errors import SoqlError
from simulator.soql.evaluator import FieldResolver, compile_where, sort_records
from simulator.soql.lexer import KEYWORDS, Token, parse_datetime, tokenize
from simulator.soql.parser import BoolOp, Comparison, Not, OrderItem, Query, parse

__all__ = [
    "KEYWORDS",
    "BoolOp",
    "Comparison",
    "FieldResolver",
    "Not",
    "OrderItem",
    "Query",
    "SoqlError",
    "Token",
    "compile_where",
    "parse",
    "parse_datetime",
    "sort_records",
    "tokenize",
]
