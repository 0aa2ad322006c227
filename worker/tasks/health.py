"""Diagnostics: a ping that proves a worker is consuming."""

from __future__ import annotations

from ..celery_app import celery, runtime


@celery.task(name="worker.health.ping")
def ping(key: str) -> None:
    """Write `key` to Redis so the caller can see a worker took the message."""
    runtime().redis.set(f"forcebot:ping:{key}", "pong", ex=300)
