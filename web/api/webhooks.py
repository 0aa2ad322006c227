"""/api/v1/webhooks: subscriptions (secret shown once), test pings, deliveries, redelivery."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select

from shared.models import Webhook, WebhookDelivery
from shared.webhooks.subscriptions import (
    WebhookCreate,
    WebhookInvalid,
    WebhookUpdate,
    create_webhook,
    delivery_to_dict,
    recent_deliveries,
    redeliver,
    send_test,
    update_webhook,
    webhook_to_dict,
)
from web.api import api

from ..db import db, runtime
from .errors import ApiError, get_or_404, json_body, validation_error
from .openapi import document, schema

WEBHOOK_INPUT = schema("WebhookInput", WebhookCreate.model_json_schema())
WEBHOOK_PATCH = schema("WebhookPatch", WebhookUpdate.model_json_schema())
WEBHOOK = schema(
    "Webhook",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "enabled": {"type": "boolean"},
            "description": {"type": ["string", "null"]},
            "deliveries": {"type": "object"},
            "secret": {"type": "string", "description": "only in the answer to POST"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)
DELIVERY = schema(
    "WebhookDelivery",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "webhook_id": {"type": "integer"},
            "event": {"type": "object"},
            "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer"},
            "response_code": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "attempt_log": {"type": "array", "items": {"type": "object"}},
        },
    },
)
ID_PARAM = [{"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _invalid(exc: WebhookInvalid) -> ApiError:
    db().rollback()
    return validation_error(exc.problems)


@api.post("/webhooks")
def create_webhook_api() -> Any:
    session = db()
    try:
        webhook, secret = create_webhook(session, runtime().crypto, json_body())
    except WebhookInvalid as exc:
        raise _invalid(exc) from None
    session.commit()
    return jsonify({**webhook_to_dict(session, webhook), "secret": secret}), 201


@api.get("/webhooks")
def list_webhooks() -> Any:
    session = db()
    rows = session.scalars(select(Webhook).order_by(Webhook.id)).all()
    return jsonify({"webhooks": [webhook_to_dict(session, w) for w in rows]})


@api.get("/webhooks/<int:webhook_id>")
def get_webhook(webhook_id: int) -> Any:
    return jsonify(webhook_to_dict(db(), get_or_404(Webhook, webhook_id, "webhook")))


@api.patch("/webhooks/<int:webhook_id>")
def update_webhook_api(webhook_id: int) -> Any:
    session = db()
    webhook = get_or_404(Webhook, webhook_id, "webhook")
    try:
        update_webhook(session, webhook, json_body())
    except WebhookInvalid as exc:
        raise _invalid(exc) from None
    session.commit()
    return jsonify(webhook_to_dict(session, webhook))


@api.delete("/webhooks/<int:webhook_id>")
def delete_webhook_api(webhook_id: int) -> Any:
    session = db()
    session.delete(get_or_404(Webhook, webhook_id, "webhook"))
    session.commit()
    return jsonify({"deleted": True})


@api.post("/webhooks/<int:webhook_id>/test")
def test_webhook_api(webhook_id: int) -> Any:
    session = db()
    delivery = send_test(session, get_or_404(Webhook, webhook_id, "webhook"))
    session.commit()
    return jsonify(delivery_to_dict(delivery)), 202


@api.get("/webhooks/<int:webhook_id>/deliveries")
def list_deliveries(webhook_id: int) -> Any:
    session = db()
    get_or_404(Webhook, webhook_id, "webhook")
    rows = recent_deliveries(session, webhook_id)
    return jsonify({"deliveries": [delivery_to_dict(d) for d in rows]})


@api.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver_api(webhook_id: int, delivery_id: int) -> Any:
    session = db()
    delivery = get_or_404(WebhookDelivery, delivery_id, "delivery")
    if delivery.webhook_id != webhook_id:
        raise ApiError(404, "not_found", "delivery not found")
    again = redeliver(session, delivery)
    session.commit()
    return jsonify(delivery_to_dict(again)), 202


_LIST = {"type": "object", "properties": {"webhooks": {"type": "array", "items": WEBHOOK}}}
_DELIVERIES = {"type": "object", "properties": {"deliveries": {"type": "array", "items": DELIVERY}}}
document("/webhooks", "POST", "Subscribe a URL to events (the secret is shown once)",
         request=WEBHOOK_INPUT, response=WEBHOOK, status=201)  # fmt: skip
document("/webhooks", "GET", "List webhook subscriptions", response=_LIST)
document("/webhooks/{webhook_id}", "GET", "Get a subscription", response=WEBHOOK, params=ID_PARAM)
document("/webhooks/{webhook_id}", "PATCH", "Change a subscription", request=WEBHOOK_PATCH,
         response=WEBHOOK, params=ID_PARAM)  # fmt: skip
document("/webhooks/{webhook_id}", "DELETE", "Delete a subscription and its deliveries",
         params=ID_PARAM)  # fmt: skip
document("/webhooks/{webhook_id}/test", "POST", "Queue a ping to this subscription",
         response=DELIVERY, status=202, params=ID_PARAM)  # fmt: skip
document("/webhooks/{webhook_id}/deliveries", "GET", "Recent deliveries, newest first",
         response=_DELIVERIES, params=ID_PARAM)  # fmt: skip
document(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    "POST",
    "Send a delivery's event again (a new delivery)",
    response=DELIVERY,
    status=202,
    params=[
        *ID_PARAM,
        {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "integer"}},
    ],
)
