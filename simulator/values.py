"""Value formats shared by the stores and the routes (Salesforce's datetime form, JSON values)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

UTC = dt.UTC


def fmt_dt(value: dt.datetime) -> str:
    """Salesforce's datetime format: 2026-01-01T00:00:00.000+0000."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def json_value(value: Any) -> Any:
    """A stored value as Salesforce's JSON writes it (datetimes and dates as text)."""
    if isinstance(value, dt.datetime):
        return fmt_dt(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
