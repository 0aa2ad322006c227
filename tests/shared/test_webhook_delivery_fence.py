"""A delivery whose send outlasts its lease: the overtaken worker's result is fenced out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from shared import webhooks
from shared.models import WebhookAttempt, WebhookDelivery, utcnow
from shared.webhooks import delivery as deliveries
from shared.webhooks.subscriptions import create_webhook
from tests.shared.outbound.servers import Receiver


def test_a_result_recorded_after_the_claim_was_taken_over_changes_nothing(runtime):
    with Receiver("127.0.0.1") as receiver:
        with runtime.Session.begin() as session:
            create_webhook(
                session, runtime.crypto, {"url": receiver.url + "/in", "events": ["run.failed"]}
            )
        with runtime.Session.begin() as session:
            webhooks.emit(session, "run.failed", {"run": {"id": 1}}, order_key="run:1")
        with runtime.Session() as session:
            (delivery_id,) = session.scalars(select(WebhookDelivery.id)).all()
        first = deliveries._claim(runtime, delivery_id)
        assert first is not None
        taken_over = []

        def lease_runs_out_and_another_worker_claims(_request):
            # While worker A waits for the answer: its lease expires and worker B claims.
            with runtime.Session.begin() as session:
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id)
                    .values(claimed_until=utcnow() - timedelta(seconds=1))
                )
            taken_over.append(deliveries._claim(runtime, delivery_id))

        receiver.before_answering(lease_runs_out_and_another_worker_claims)
        assert deliveries.attempt(runtime, delivery_id, first) == 0  # A: overtaken
        (second,) = taken_over
        assert second is not None
        with runtime.Session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row.status == "pending" and row.attempts == 0
            assert row.claimed_until == second  # B's claim is intact
            (noted,) = session.scalars(select(WebhookAttempt)).all()
            assert noted.status_code == 200 and "result not applied" in noted.error

        receiver.before_answering(None)
        assert deliveries.attempt(runtime, delivery_id, second) == 1  # B records its own result
        with runtime.Session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            assert row.status == "delivered" and row.attempts == 1 and row.claimed_until is None
        assert len(receiver.requests) == 2  # at least once: both sends reached the receiver
