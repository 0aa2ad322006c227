"""One database session per request; views commit explicitly, teardown closes it."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import abort, current_app, g
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.runtime import Runtime

T = TypeVar("T")


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["forcebot.runtime"]
    return rt


def settings() -> Settings:
    s: Settings = current_app.extensions["forcebot.settings"]
    return s


def db() -> Session:
    if "db" not in g:
        g.db = runtime().Session()
    session: Session = g.db
    return session


def get_or_404(model: type[T], ident: Any) -> T:
    """The row with this primary key, or a 404 page."""
    row = db().get(model, ident)
    if row is None:
        abort(404)
    return row
