"""Jinja filters for the pages."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    text = duration(seconds)
    return f"in {text}" if future else f"{text} ago"


def duration(seconds: float) -> str:
    """Seconds as the two largest units: "1h 59m", "2d 3h", "45s" (never rounds 1h59m to 1h
    without saying the minutes)."""
    seconds = int(abs(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for index, (unit, size) in enumerate(units):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            if unit != "s":
                smaller, smaller_size = units[index + 1]
                rest = (seconds % size) // smaller_size
                if rest:
                    text += f" {rest}{smaller}"
            return text
    return f"{seconds}s"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["when"] = _when
    app.jinja_env.filters["ago"] = _ago
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["pretty_body"] = pretty_body
    app.jinja_env.filters["label"] = label
    app.jinja_env.globals["url_for_safe"] = url_for_safe


def url_for_safe(endpoint: str, **values: object) -> str | None:
    """url_for, or None when the page is not part of this build yet (keeps the nav honest)."""
    from flask import url_for
    from werkzeug.routing import BuildError

    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def pretty_body(text: str | None) -> str:
    """A recorded HTTP body indented when it is JSON, else as recorded (bodies are capped,
    so a cut-off JSON body stays as it is)."""
    import json

    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


LABELS = {
    "needs_reauth": "needs re-authorization",
    "active": "active",
}


def label(value: str | None) -> str:
    """A status word as people read it ("needs_reauth" → "needs re-authorization")."""
    if value is None:
        return ""
    return LABELS.get(value, value.replace("_", " "))
