"""Named Celery tasks, one module per concern; importing this registers them all."""

from . import accounts, health, runs, schedules, webhooks  # noqa: F401
