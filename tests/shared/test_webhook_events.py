"""The outbox: events exist exactly when their cause committed; fan-out to subscribers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared import webhooks
from shared.linking import complete_link, start_link
from shared.models import Service, Webhook, WebhookDelivery, WebhookEvent
from tests.conftest import SIM_CLIENT_ID, SIM_CLIENT_SECRET
from tests.web.linkflow import consent, query


def _subscribe(runtime, events, enabled=True):
    with runtime.Session.begin() as session:
        session.add(
            Webhook(url="https://h.example/x", events=events, enabled=enabled, secret_enc="x")
        )


def _count(runtime, model, *where):
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_emit_fans_out_to_enabled_subscribers_of_the_type(runtime):
    _subscribe(runtime, ["run.failed"])
    _subscribe(runtime, ["run.failed"], enabled=False)
    _subscribe(runtime, ["run.succeeded"])
    with runtime.Session.begin() as session:
        webhooks.emit(session, "run.failed", {"x": 1}, order_key="run:1")
    assert _count(runtime, WebhookEvent) == 1
    assert _count(runtime, WebhookDelivery) == 1


def test_a_rolled_back_cause_leaves_no_event(runtime):
    _subscribe(runtime, ["run.failed"])
    with pytest.raises(RuntimeError), runtime.Session.begin() as session:
        webhooks.emit(session, "run.failed", {}, order_key="run:1")
        raise RuntimeError("the change failed")
    assert _count(runtime, WebhookEvent) == 0
    assert _count(runtime, WebhookDelivery) == 0


def test_unknown_event_types_are_a_programming_error(runtime):
    with runtime.Session() as session, pytest.raises(ValueError):
        webhooks.emit(session, "run.exploded", {}, order_key="x")


def test_completing_a_link_emits_account_linked(runtime, settings, sim):
    _subscribe(runtime, ["account.linked"])
    with runtime.Session.begin() as session:
        service = Service(
            name="sim",
            client_id=SIM_CLIENT_ID,
            client_secret_enc=runtime.crypto.encrypt(SIM_CLIENT_SECRET),
            login_url=sim.login_url,
        )
        session.add(service)
        session.flush()
        started = start_link(
            session, runtime.crypto, settings.oauth_callback_url, service.id, "acme-prod"
        )
    result = complete_link(
        runtime, query(consent(started.authorize_url)), redirect_uri=settings.oauth_callback_url
    )
    with runtime.Session() as session:
        (event,) = session.scalars(select(WebhookEvent)).all()
    assert event.type == "account.linked" and event.order_key == f"account:{result.account_id}"
    assert event.data["account"]["name"] == "acme-prod"
    assert event.data["account"]["status"] == "active"
    assert "token" not in str(event.data).lower()
    assert _count(runtime, WebhookDelivery) == 1


def test_a_webhook_host_resolving_to_a_private_address_is_refused_at_delivery(runtime, monkeypatch):
    """Checked again at every delivery; the attempt records the rule; nothing connects."""
    import socket

    from shared.outbound import OutboundClient, Policy
    from shared.webhooks.delivery import deliver_due

    def refuse(self, address):
        raise AssertionError(f"connect attempted to {address}")

    with runtime.Session.begin() as session:
        session.add(
            Webhook(
                url="https://hooks.example.test/in",
                events=["run.failed"],
                secret_enc=runtime.crypto.encrypt("whsec_x"),
            )
        )
    with runtime.Session.begin() as session:
        webhooks.emit(session, "run.failed", {}, order_key="run:1")
    monkeypatch.setattr(socket.socket, "connect", refuse)  # after the database is reached
    policy = Policy(allow_loopback=True, resolver=lambda host, port: ["169.254.169.254"])
    delivered = deliver_due(runtime, client_for=lambda: OutboundClient(policy, max_attempts=1))
    monkeypatch.undo()
    assert delivered == 0
    with runtime.Session() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert "refused by rule metadata" in delivery.last_error
        assert delivery.attempt_rows[0].status_code is None
