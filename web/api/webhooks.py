"""/api/v1/webhooks: subscriptions (secret shown once), test pings, deliveries, redelivery.

The body models here are the API's contract; `shared.webhooks.subscriptions` applies the
same rules (one URL check, `check_webhook_url`) for the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import select

from shared.models import Webhook, WebhookDelivery
from shared.webhooks.subscriptions import (
    WEBHOOK_URL_MAX,
    WEBHOOK_URL_PATTERN,
    WEBHOOK_URL_TEXT,
    EventType,
    WebhookInvalid,
    check_webhook_url,
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
from .contract import Body, Reply, operation
from .errors import ApiError, get_or_404, validation_error

Url = Annotated[
    str,
    Field(
        max_length=WEBHOOK_URL_MAX,
        description=WEBHOOK_URL_TEXT,
        json_schema_extra={"format": "uri", "pattern": WEBHOOK_URL_PATTERN},
    ),
]
Events = Annotated[list[EventType], Field(min_length=1, max_length=6)]
Description = Annotated[str, Field(max_length=500)]


class WebhookIn(Body):
    url: Url
    events: Events
    enabled: bool = True
    description: Description | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_webhook_url(value)


class WebhookChange(Body):
    """Only the fields sent change; description null clears it (url, events, enabled must
    not be null: the document says so, and the server answers 422)."""

    model_config = {"json_schema_extra": lambda schema: _no_null_defaults(schema)}

    url: Url | SkipJsonSchema[None] = None
    events: Events | SkipJsonSchema[None] = None
    enabled: bool | SkipJsonSchema[None] = None
    description: Description | None = None


def _no_null_defaults(schema: dict[str, Any]) -> None:
    # "Left out" is the default; null is not a value these fields take.
    for name in ("url", "events", "enabled"):
        schema["properties"][name].pop("default", None)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class DeliveryCounts(Reply):
    pending: int
    delivered: int
    failed: int


class WebhookOut(Reply):
    id: int
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    deliveries: DeliveryCounts
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret; shown in this answer only")


class WebhookList(Reply):
    webhooks: list[WebhookOut]


class EventRef(Reply):
    id: str
    type: str
    created_at: str


class AttemptOut(Reply):
    number: int
    at: str
    duration_ms: int | None
    response_code: int | None
    error: str | None


class DeliveryOut(Reply):
    id: int
    webhook_id: int
    event: EventRef
    status: str = Field(json_schema_extra={"enum": ["pending", "delivered", "failed"]})
    attempts: int
    response_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    created_at: str
    attempt_log: list[AttemptOut]


class DeliveryList(Reply):
    deliveries: list[DeliveryOut]


class Deleted(Reply):
    deleted: bool


def _sent(body: Body) -> dict[str, Any]:
    return body.model_dump(include=body.model_fields_set)


@operation(api, "POST", "/webhooks", "Subscribe a URL to events (the secret is shown once)",
           body=WebhookIn, response=WebhookCreated, status=201)  # fmt: skip
def create_webhook_api(*, body: WebhookIn) -> Any:
    session = db()
    try:
        webhook, secret = create_webhook(session, runtime().crypto, body.model_dump())
    except WebhookInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return {**webhook_to_dict(session, webhook), "secret": secret}


@operation(api, "GET", "/webhooks", "List webhook subscriptions", response=WebhookList)
def list_webhooks() -> Any:
    session = db()
    rows = session.scalars(select(Webhook).order_by(Webhook.id)).all()
    return {"webhooks": [webhook_to_dict(session, w) for w in rows]}


@operation(api, "GET", "/webhooks/<int:webhook_id>", "Get a subscription", response=WebhookOut)
def get_webhook(webhook_id: int) -> Any:
    return webhook_to_dict(db(), get_or_404(Webhook, webhook_id, "webhook"))


@operation(api, "PATCH", "/webhooks/<int:webhook_id>", "Change a subscription",
           body=WebhookChange, response=WebhookOut)  # fmt: skip
def update_webhook_api(webhook_id: int, *, body: WebhookChange) -> Any:
    session = db()
    webhook = get_or_404(Webhook, webhook_id, "webhook")
    try:
        update_webhook(session, webhook, _sent(body))
    except WebhookInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return webhook_to_dict(session, webhook)


@operation(api, "DELETE", "/webhooks/<int:webhook_id>",
           "Delete a subscription and its deliveries", response=Deleted)  # fmt: skip
def delete_webhook_api(webhook_id: int) -> Any:
    session = db()
    session.delete(get_or_404(Webhook, webhook_id, "webhook"))
    session.commit()
    return {"deleted": True}


@operation(api, "POST", "/webhooks/<int:webhook_id>/test", "Queue a ping to this subscription",
           response=DeliveryOut, status=202)  # fmt: skip
def test_webhook_api(webhook_id: int) -> Any:
    session = db()
    delivery = send_test(session, get_or_404(Webhook, webhook_id, "webhook"))
    session.commit()
    return delivery_to_dict(delivery)


@operation(api, "GET", "/webhooks/<int:webhook_id>/deliveries",
           "Recent deliveries (newest first) and their attempts",
           response=DeliveryList)  # fmt: skip
def list_deliveries(webhook_id: int) -> Any:
    session = db()
    get_or_404(Webhook, webhook_id, "webhook")
    return {"deliveries": [delivery_to_dict(d) for d in recent_deliveries(session, webhook_id)]}


@operation(api, "POST", "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver",
           "Send a delivery's event again (as a new delivery, due now)",
           response=DeliveryOut, status=202)  # fmt: skip
def redeliver_api(webhook_id: int, delivery_id: int) -> Any:
    session = db()
    delivery = get_or_404(WebhookDelivery, delivery_id, "delivery")
    if delivery.webhook_id != webhook_id:
        raise ApiError(404, "not_found", "delivery not found")
    again = redeliver(session, delivery)
    session.commit()
    return delivery_to_dict(again)
