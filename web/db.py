"""One database session per request; views commit explicitly, teardown closes it."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.runtime import Runtime


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
