"""SOQL date literals (TODAY, LAST_N_DAYS:n, THIS_MONTH, ...) as ranges of local dates.

A literal is a half-open range ``[start, end)`` of dates in the org's time zone; comparisons
follow Salesforce: ``= X`` is inside the range, ``< X`` before its start, ``<= X`` before its
end, ``> X`` after its end, ``>= X`` from its start. Against a datetime field the range's ends
are local midnights converted to UTC.

Choices where Salesforce's documentation leaves room: weeks start on Monday (the simulated
user's locale is en_GB); the fiscal year is the calendar year (an org's default);
``LAST_N_DAYS:n`` covers today and the n days before it, ``NEXT_N_DAYS:n`` the n days after
today (today excluded), as Salesforce evaluates them.
"""

from __future__ import annotations

import datetime as dt

_FIXED = {
    "YESTERDAY", "TODAY", "TOMORROW",
    "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK",
    "LAST_MONTH", "THIS_MONTH", "NEXT_MONTH",
    "LAST_90_DAYS", "NEXT_90_DAYS",
    "LAST_QUARTER", "THIS_QUARTER", "NEXT_QUARTER",
    "LAST_YEAR", "THIS_YEAR", "NEXT_YEAR",
    "LAST_FISCAL_QUARTER", "THIS_FISCAL_QUARTER", "NEXT_FISCAL_QUARTER",
    "LAST_FISCAL_YEAR", "THIS_FISCAL_YEAR", "NEXT_FISCAL_YEAR",
}  # fmt: skip
_WITH_N = {
    "LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO",
    "LAST_N_WEEKS", "NEXT_N_WEEKS", "N_WEEKS_AGO",
    "LAST_N_MONTHS", "NEXT_N_MONTHS", "N_MONTHS_AGO",
    "LAST_N_QUARTERS", "NEXT_N_QUARTERS", "N_QUARTERS_AGO",
    "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO",
    "LAST_N_FISCAL_QUARTERS", "NEXT_N_FISCAL_QUARTERS", "N_FISCAL_QUARTERS_AGO",
    "LAST_N_FISCAL_YEARS", "NEXT_N_FISCAL_YEARS", "N_FISCAL_YEARS_AGO",
}  # fmt: skip


def is_date_literal(word: str) -> bool:
    return word.upper() in _FIXED or word.upper() in _WITH_N


def needs_number(name: str) -> bool:
    return name.upper() in _WITH_N


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, 1)


def date_range(name: str, n: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The ``[start, end)`` local dates a literal covers, for the org's ``today``."""
    name = name.upper().replace("_FISCAL", "")
    n = n or 0
    day = dt.timedelta(days=1)
    week = today - dt.timedelta(days=today.weekday())
    month = today.replace(day=1)
    quarter = dt.date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
    year = dt.date(today.year, 1, 1)
    fixed = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week - 7 * day, week),
        "THIS_WEEK": (week, week + 7 * day),
        "NEXT_WEEK": (week + 7 * day, week + 14 * day),
        "LAST_MONTH": (_add_months(month, -1), month),
        "THIS_MONTH": (month, _add_months(month, 1)),
        "NEXT_MONTH": (_add_months(month, 1), _add_months(month, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_QUARTER": (_add_months(quarter, -3), quarter),
        "THIS_QUARTER": (quarter, _add_months(quarter, 3)),
        "NEXT_QUARTER": (_add_months(quarter, 3), _add_months(quarter, 6)),
        "LAST_YEAR": (_add_months(year, -12), year),
        "THIS_YEAR": (year, _add_months(year, 12)),
        "NEXT_YEAR": (_add_months(year, 12), _add_months(year, 24)),
    }
    if name in fixed:
        return fixed[name]
    with_n = {
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
        "LAST_N_WEEKS": (week - 7 * n * day, week),
        "NEXT_N_WEEKS": (week + 7 * day, week + 7 * (n + 1) * day),
        "N_WEEKS_AGO": (week - 7 * n * day, week - 7 * (n - 1) * day),
        "LAST_N_MONTHS": (_add_months(month, -n), month),
        "NEXT_N_MONTHS": (_add_months(month, 1), _add_months(month, n + 1)),
        "N_MONTHS_AGO": (_add_months(month, -n), _add_months(month, 1 - n)),
        "LAST_N_QUARTERS": (_add_months(quarter, -3 * n), quarter),
        "NEXT_N_QUARTERS": (_add_months(quarter, 3), _add_months(quarter, 3 * (n + 1))),
        "N_QUARTERS_AGO": (_add_months(quarter, -3 * n), _add_months(quarter, 3 - 3 * n)),
        "LAST_N_YEARS": (_add_months(year, -12 * n), year),
        "NEXT_N_YEARS": (_add_months(year, 12), _add_months(year, 12 * (n + 1))),
        "N_YEARS_AGO": (_add_months(year, -12 * n), _add_months(year, 12 - 12 * n)),
    }
    return with_n[name]
