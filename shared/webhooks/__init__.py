"""Signed, durable webhooks: the outbox (`emit`), delivery with retries, subscriptions.

See `events.py` for when an event exists, `delivery.py` for what delivery guarantees and
`signing.py` for the `Forcebot-Signature` header.
"""

from __future__ import annotations

from .events import (
    ACCOUNT_LINKED,
    ACCOUNT_NEEDS_REAUTH,
    EVENT_TYPES,
    PING,
    RUN_FAILED,
    RUN_SUCCEEDED,
    RUN_WAITING,
    SYNC_FINISHED,
    account_event,
    body_of,
    emit,
    run_event,
    sync_event,
)
from .signing import HEADER, signature, verify

__all__ = [
    "ACCOUNT_LINKED",
    "ACCOUNT_NEEDS_REAUTH",
    "EVENT_TYPES",
    "HEADER",
    "PING",
    "RUN_FAILED",
    "RUN_SUCCEEDED",
    "RUN_WAITING",
    "SYNC_FINISHED",
    "account_event",
    "body_of",
    "emit",
    "run_event",
    "signature",
    "sync_event",
    "verify",
]
