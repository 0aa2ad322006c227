"""Named Celery tasks, one module per concern; importing this registers them all."""

from . import accounts, health, runs, schedules, syncs, webhooks  # noqa: F401
