"""The /webhooks page: create with the secret shown once, problems listed, ping, redeliver."""

from __future__ import annotations

import re

from sqlalchemy import select

from shared.models import Webhook, WebhookDelivery


def _csrf(page):
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_create_shows_secret_once_then_ping_and_redeliver(logged_in, runtime):
    client = logged_in.client
    page = client.get("/webhooks").get_data(as_text=True)
    bad = client.post(
        "/webhooks",
        data={"csrf_token": _csrf(page), "url": "http://hooks.example.com/x", "events": []},
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "plain http is only allowed" in text and "events:" in text
    response = client.post(
        "/webhooks",
        data={"csrf_token": _csrf(page), "url": "https://hooks.example.com/x",
              "events": ["run.failed", "sync.finished"]},
    )  # fmt: skip
    assert response.status_code == 200
    shown = re.search(r"<code>(whsec_[^<]+)</code>", response.get_data(as_text=True)).group(1)
    with runtime.Session() as session:
        webhook = session.scalars(select(Webhook)).one()
        assert runtime.crypto.decrypt(webhook.secret_enc) == shown
        webhook_id = webhook.id
    assert shown not in client.get("/webhooks").get_data(as_text=True)
    detail = client.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert shown not in detail and "No deliveries yet" in detail
    client.post(f"/webhooks/{webhook_id}/test", data={"csrf_token": _csrf(detail)})
    with runtime.Session() as session:
        (ping,) = session.scalars(select(WebhookDelivery)).all()
    detail = client.get(f"/webhooks/{webhook_id}").get_data(as_text=True)
    assert "ping" in detail and "Redeliver" in detail
    client.post(
        f"/webhooks/{webhook_id}/deliveries/{ping.id}/redeliver", data={"csrf_token": _csrf(detail)}
    )
    with runtime.Session() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 2
    assert client.post(f"/webhooks/{webhook_id}/test").status_code == 400  # CSRF required


def test_metrics_count_deliveries_and_outbound_requests(logged_in, runtime):
    from shared import outbound, webhooks

    with runtime.Session.begin() as session:
        session.add(Webhook(url="https://h.example/x", events=["run.failed"], secret_enc="x"))
    with runtime.Session.begin() as session:
        webhooks.emit(session, "run.failed", {}, order_key="run:1")
    outbound.record_result(runtime, "refused", "metadata")
    outbound.record_result(runtime, "public", "200")
    body = logged_in.client.get("/metrics").get_data(as_text=True)
    assert 'forcebot_webhook_deliveries{event="run.failed",outcome="pending"} 1.0' in body
    assert 'forcebot_outbound_requests_total{host_class="refused",status="metadata"} 1.0' in body
    assert 'forcebot_outbound_requests_total{host_class="public",status="200"} 1.0' in body
