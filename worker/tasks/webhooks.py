"""Webhook delivery: a beat tick that sends due deliveries (claimed in the database)."""

from __future__ import annotations

from shared.webhooks.delivery import deliver_due

from ..beat import register
from ..celery_app import celery, runtime

# Two beats or overlapping ticks are safe: each delivery is claimed with a compare-and-swap.
register("webhooks-deliver-due", "worker.webhooks.deliver_due", 1.0)


@celery.task(name="worker.webhooks.deliver_due")
def deliver_due_task() -> int:
    """Send the deliveries that are due; return how many were delivered."""
    return deliver_due(runtime())
