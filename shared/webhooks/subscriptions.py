"""Webhook subscriptions: pydantic bodies, create/update/delete, what the API shows.

URLs: https anywhere, or plain http to a loopback host (a local receiver). At save time the
URL's form is checked without any DNS lookup (`WEBHOOK_URL_PATTERN`, which the API's schema
states; an IP address is accepted only for loopback); host names are resolved and judged by
the SSRF guard at every delivery, so a name that points at a private address is refused then
(the attempt records the rule).
The secret is generated here, returned once by `create_webhook`, stored encrypted.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.crypto import Crypto
from shared.models import Webhook, WebhookDelivery, WebhookEvent, isoformat
from shared.outbound.guard import Policy, Refused, check_url, parse_numeric_host
from shared.validation import problems_of

from .events import EVENT_TYPES, PING, emit
from .signing import new_secret

EventType = Literal[
    "run.succeeded",
    "run.failed",
    "run.waiting",
    "sync.finished",
    "account.needs_reauth",
    "account.linked",
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LOOPBACK = rf"(?:localhost|127\.{_OCTET}\.{_OCTET}\.{_OCTET}|\[::1\])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The last label starts with a letter, so a name is never read as an address (`10.0.0.1`,
# `0x0a000001` and `2130706433` are addresses to inet_aton).
_NAME = rf"(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
_PORT = (
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
    r"|6553[0-5]))?"
)
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_REST = rf"(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
WEBHOOK_URL_PATTERN = rf"^(?:https://(?:{_NAME}|{_LOOPBACK})|http://{_LOOPBACK}){_PORT}{_REST}$"
"""Every URL a subscription accepts, and only those (the API's schema states it)."""
WEBHOOK_URL_MAX = 2000
WEBHOOK_URL_TEXT = (
    "https://host[:port][/path][?query], or plain http to a loopback receiver (localhost, "
    "127.x.x.x, [::1]). The host is a DNS name; an IP address is accepted only for loopback. "
    "Characters outside RFC 3986's are percent-encoded; no user:password@. At every delivery "
    "the name is resolved and the SSRF guard refuses it when any address it resolves to is "
    "private, loopback (unless named as loopback), link-local, a cloud metadata address, "
    "multicast or reserved: that attempt fails with the rule's name."
)


def check_webhook_url(url: str) -> str:
    """`url` if a subscription may use it (WEBHOOK_URL_PATTERN), else ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not url.startswith(parts.scheme + "://"):
        raise ValueError("must be an https URL (or http to a loopback receiver)")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"malformed URL: {exc}") from None
    if not host:
        raise ValueError("the URL has no host")
    if "@" in parts.netloc:
        raise ValueError("user names and passwords in the URL are not accepted")
    numeric = parse_numeric_host(host)
    loopback = host.lower() == "localhost" or (numeric is not None and numeric.is_loopback)
    if parts.scheme == "http" and not loopback:
        raise ValueError("plain http is only allowed to a loopback receiver; use https")
    if numeric is not None:
        try:
            check_url(url, Policy(allow_loopback=True, resolver=lambda h, p: []))
        except Refused as exc:
            raise ValueError(exc.message) from None
        if not loopback:
            raise ValueError("name the receiver by its DNS name (an IP address only for loopback)")
    if re.fullmatch(WEBHOOK_URL_PATTERN, url) is None:
        raise ValueError(
            "not a URL a subscription accepts: https://host[:port][/path][?query] with "
            "letters, digits and -._~!$&'()*+,;=:@/?% (percent-encode the rest), a port from "
            "1 to 65535, a loopback address as 127.x.x.x or [::1]"
        )
    return url


class WebhookCreate(BaseModel):
    """POST /webhooks."""

    model_config = ConfigDict(extra="forbid", title="WebhookInput")

    url: str = Field(max_length=WEBHOOK_URL_MAX)
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool = True
    description: str | None = Field(default=None, max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_webhook_url(value)


class WebhookUpdate(BaseModel):
    """PATCH /webhooks/<id>: only the fields given change."""

    model_config = ConfigDict(extra="forbid", title="WebhookPatch")

    url: str | None = Field(default=None, max_length=WEBHOOK_URL_MAX)
    events: list[EventType] | None = Field(default=None, min_length=1)
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)


class WebhookInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise WebhookInvalid(problems_of(exc)) from None


def create_webhook(session: Session, crypto: Crypto, data: Any) -> tuple[Webhook, str]:
    """Add a subscription; return it and its secret (the only time the secret is shown)."""
    body: WebhookCreate = parse(WebhookCreate, data)
    secret = new_secret()
    webhook = Webhook(
        url=body.url,
        events=sorted(set(body.events)),
        enabled=body.enabled,
        description=body.description,
        secret_enc=crypto.encrypt(secret),
    )
    session.add(webhook)
    session.flush()
    return webhook, secret


def update_webhook(session: Session, webhook: Webhook, data: Any) -> Webhook:
    body: WebhookUpdate = parse(WebhookUpdate, data)
    for name in body.model_fields_set:
        value = getattr(body, name)
        if value is None and name != "description":
            raise WebhookInvalid([f"{name}: must not be null"])
        setattr(webhook, name, sorted(set(value)) if name == "events" else value)
    session.flush()
    return webhook


def send_test(session: Session, webhook: Webhook) -> WebhookDelivery:
    """Queue a `ping` to this subscription only (enabled or not is checked at delivery)."""
    event = emit(
        session,
        PING,
        {"webhook_id": webhook.id},
        order_key=f"ping:{webhook.id}",
        only_webhook=webhook.id,
    )
    session.flush()
    return session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)
    ).one()


def redeliver(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same event to the same subscription, due now."""
    from shared.models import utcnow

    again = WebhookDelivery(
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        order_key=delivery.order_key,
        next_attempt_at=utcnow(),
    )
    session.add(again)
    session.flush()
    return again


def webhook_to_dict(session: Session, webhook: Webhook) -> dict[str, Any]:
    counts = dict(
        session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.webhook_id == webhook.id)
            .group_by(WebhookDelivery.status)
        ).all()
    )
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events or []),
        "enabled": webhook.enabled,
        "description": webhook.description,
        "deliveries": {s: counts.get(s, 0) for s in ("pending", "delivered", "failed")},
        "created_at": isoformat(webhook.created_at),
        "updated_at": isoformat(webhook.updated_at),
    }


def delivery_to_dict(delivery: WebhookDelivery, event: WebhookEvent | None = None) -> dict:
    event = event or delivery.event
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": {"id": event.uid, "type": event.type, "created_at": isoformat(event.created_at)},
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": isoformat(delivery.next_attempt_at),
        "delivered_at": isoformat(delivery.delivered_at),
        "created_at": isoformat(delivery.created_at),
        "attempt_log": [
            {
                "number": a.number,
                "at": isoformat(a.started_at),
                "duration_ms": a.duration_ms,
                "response_code": a.status_code,
                "error": a.error,
            }
            for a in delivery.attempt_rows
        ],
    }


def recent_deliveries(session: Session, webhook_id: int, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
