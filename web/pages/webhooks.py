"""Webhooks pages: list and create (the secret shown once), one subscription's deliveries,
send a test ping, redeliver, enable/disable, delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from shared.models import Webhook, WebhookDelivery
from shared.webhooks import EVENT_TYPES
from shared.webhooks.subscriptions import (
    WebhookInvalid,
    create_webhook,
    recent_deliveries,
    redeliver,
    send_test,
    update_webhook,
)

from ..db import db, get_or_404, runtime

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _index(values: dict[str, Any], problems: list[str], secret: str | None = None) -> Any:
    hooks = db().scalars(select(Webhook).order_by(Webhook.id)).all()
    page = render_template(
        "webhooks/index.html",
        webhooks=hooks,
        event_types=EVENT_TYPES,
        values=values,
        problems=problems,
        secret=secret,
    )
    return page, 422 if problems else 200


@bp.get("")
def index() -> Any:
    return _index({"events": ["run.failed"]}, [])


@bp.post("")
def create() -> Any:
    values = {
        "url": request.form.get("url", "").strip(),
        "events": request.form.getlist("events"),
        "description": request.form.get("description") or None,
    }
    session = db()
    try:
        webhook, secret = create_webhook(session, runtime().crypto, values)
    except WebhookInvalid as exc:
        session.rollback()
        return _index(values, exc.problems)
    session.commit()
    # Rendered, not redirected: the secret is in this one response and nowhere else.
    flash(f"Webhook {webhook.id} created.", "ok")
    return _index({"events": ["run.failed"]}, [], secret=secret)


@bp.get("/<int:webhook_id>")
def detail(webhook_id: int) -> Any:
    webhook = get_or_404(Webhook, webhook_id)
    return render_template(
        "webhooks/detail.html",
        webhook=webhook,
        deliveries=recent_deliveries(db(), webhook_id),
    )


@bp.post("/<int:webhook_id>/test")
def test(webhook_id: int) -> Any:
    session = db()
    send_test(session, get_or_404(Webhook, webhook_id))
    session.commit()
    flash("Ping queued; it appears below once the worker has sent it.", "ok")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/toggle")
def toggle(webhook_id: int) -> Any:
    session = db()
    webhook = get_or_404(Webhook, webhook_id)
    update_webhook(session, webhook, {"enabled": not webhook.enabled})
    session.commit()
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver_page(webhook_id: int, delivery_id: int) -> Any:
    session = db()
    delivery = get_or_404(WebhookDelivery, delivery_id)
    if delivery.webhook_id != webhook_id:
        return redirect(url_for("webhooks.detail", webhook_id=webhook_id))
    redeliver(session, delivery)
    session.commit()
    flash(f"Delivery {delivery_id} queued again.", "ok")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/delete")
def delete(webhook_id: int) -> Any:
    session = db()
    session.delete(get_or_404(Webhook, webhook_id))
    session.commit()
    flash(f"Webhook {webhook_id} deleted.", "ok")
    return redirect(url_for("webhooks.index"))
