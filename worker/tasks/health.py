"""Diagnostics: a ping that proves a worker is consuming."""

from __future__ import annotations

from typing import Any

from ..celery_app import celery, runtime


@celery.task(name="worker.health.ping", bind=True)
def ping(self: Any, key: str) -> None:
    """Write this worker's name under `key` so the caller can see which worker answered."""
    runtime().redis.set(f"forcebot:ping:{key}", self.request.hostname or "unknown", ex=300)
