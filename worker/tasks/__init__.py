"""Named Celery tasks, one module per concern; importing this registers them all."""

from . import health  # noqa: F401
