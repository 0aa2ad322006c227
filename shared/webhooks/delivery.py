"""Deliver pending webhook deliveries: claimed one at a time, in order, with retries.

Guarantees. Each delivery is sent at least once while its subscription is enabled and its
attempts last; a worker that dies after sending but before recording the answer leaves the
claim to expire (`LEASE_SECONDS`) and the delivery is sent again, so receivers should
de-duplicate on the body's `id`. Within one subscription, deliveries with the same
`order_key` (one run, one account, one sync) are attempted one at a time, oldest first: only
the oldest pending delivery of such a chain is ever due, so a later event waits behind an
earlier one that is still retrying. One exception: the timeout bounds each read, not the
whole exchange, so a receiver that trickles its answer for longer than `LEASE_SECONDS` can
see the same delivery sent again (and its result recorded twice) while the first send is
still open — another reason to de-duplicate on `id`. The results of such an overlap are fenced
on the claim: only the worker holding the current claim (its `claimed_until`) updates the
delivery; the overtaken one records its attempt row, marked as not applied, and changes
nothing else, so it can neither clear the new owner's claim nor finish the delivery under it.
A delivery that used all its attempts is marked
`failed` and the chain moves on. Deliveries of a disabled subscription are not attempted;
they wait, in order, until it is enabled again (or deleted with it).

Retries: after a non-2xx answer, a timeout, a connection error or a refused address the next
attempt is due after `RETRY_SCHEDULE[n]` seconds (at least the receiver's Retry-After):
10 s, 30 s, 2 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 12 h, 12 h — 13 attempts over
about 40 hours. `FORCEBOT_WEBHOOK_RETRY_SCALE` multiplies the schedule (tests use 0.01).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from shared import outbound
from shared.models import Webhook, WebhookAttempt, WebhookDelivery, utcnow
from shared.models.webhooks import DELIVERED, FAILED, PENDING
from shared.salesforce.errors import SalesforceError
from shared.salesforce.redact import redact_text

from .events import body_of
from .signing import HEADER, signature

log = logging.getLogger(__name__)

RETRY_SCHEDULE = (10, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 43200)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
LEASE_SECONDS = 60.0
TIMEOUT_SECONDS = 10.0
USER_AGENT = "Forcebot-Webhooks/1"


def due_ids(session: Any, now: Any, limit: int) -> list[int]:
    """Ids of chain heads (oldest pending per webhook and order key) that are due."""
    heads = (
        select(func.min(WebhookDelivery.id))
        .where(WebhookDelivery.status == PENDING)
        .group_by(WebhookDelivery.webhook_id, WebhookDelivery.order_key)
    )
    query = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.id.in_(heads),
            Webhook.enabled.is_(True),
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _claim(runtime: Any, delivery_id: int) -> datetime | None:
    """Claim a due delivery for LEASE_SECONDS; the claim's `claimed_until`, None if taken."""
    now = utcnow()
    until = now + timedelta(seconds=LEASE_SECONDS)
    with runtime.Session.begin() as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == PENDING,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            )
            .values(claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        return until if result.rowcount else None  # type: ignore[attr-defined]


def deliver_due(
    runtime: Any,
    *,
    limit: int = 20,
    client_for: Callable[[], Any] | None = None,
) -> int:
    """Attempt up to `limit` due deliveries; return how many were delivered."""
    with runtime.Session() as session:
        ids = due_ids(session, utcnow(), limit)
    delivered = 0
    for delivery_id in ids:
        claim = _claim(runtime, delivery_id)
        if claim is not None:
            delivered += attempt(runtime, delivery_id, claim, client_for=client_for)
    return delivered


def attempt(
    runtime: Any,
    delivery_id: int,
    claim: datetime,
    *,
    client_for: Callable[[], Any] | None = None,
) -> int:
    """Send one delivery claimed until `claim` and record the attempt; 1 when delivered."""
    with runtime.Session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return 0
        url = delivery.webhook.url
        secret = runtime.crypto.decrypt(delivery.webhook.secret_enc)
        body = json.dumps(body_of(delivery.event), separators=(",", ":")).encode()
        event_uid, number = delivery.event.uid, delivery.attempts + 1
    client = (client_for or (lambda: _client(runtime)))()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER: signature(secret, body),
        "Forcebot-Event-Id": event_uid,
        "Forcebot-Delivery": str(delivery_id),
    }
    started_at = utcnow()
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    try:
        response = client.request("POST", url, data=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except outbound.Refused as exc:
        error = redact_text(exc.message)
    except SalesforceError as exc:  # timeouts, connection errors, 429/5xx from the client
        status_code = exc.status
        retry_after = exc.retry_after
        error = redact_text(exc.message)
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = error is None
    now = utcnow()
    with runtime.Session.begin() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None:
            return 0
        if delivery.claimed_until != claim or delivery.status != PENDING:
            # Overtaken: another worker claimed this delivery after our lease ran out.
            note = (
                "result not applied: the claim ran out during the send and another worker took over"
            )
            session.add(
                WebhookAttempt(
                    delivery_id=delivery_id,
                    number=number,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    status_code=status_code,
                    error=f"{error}; {note}" if error else note,
                )
            )
            log.warning("webhook_delivery=%s attempt=%s overtaken: %s", delivery_id, number, note)
            return 0
        delivery.attempts = number
        delivery.claimed_until = None
        delivery.last_status_code = status_code
        delivery.last_error = error
        session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                number=number,
                started_at=started_at,
                duration_ms=duration_ms,
                status_code=status_code,
                error=error,
            )
        )
        if ok:
            delivery.status = DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif number >= MAX_ATTEMPTS:
            delivery.status = FAILED
            delivery.next_attempt_at = None
        else:
            wait = RETRY_SCHEDULE[number - 1] * runtime.settings.webhook_retry_scale
            delivery.next_attempt_at = now + timedelta(seconds=max(wait, retry_after or 0))
    log.info(
        "webhook_delivery=%s attempt=%s status=%s code=%s",
        delivery_id,
        number,
        "delivered" if ok else "failed",
        status_code,
    )
    return 1 if ok else 0


def _client(runtime: Any) -> Any:
    # One send per attempt: the retry schedule above is the retry policy, not the client's.
    return outbound.for_runtime(
        runtime, allow_loopback=True, max_attempts=1, timeout=TIMEOUT_SECONDS
    )
