"""GET /metrics: Prometheus exposition of what operators alert on.

Gauges are read from the database at scrape time (a custom collector), so every web process
reports the same numbers and nothing has to be kept in sync across gunicorn workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import outbound
from shared.models import Account, Run, WebhookDelivery, utcnow
from shared.models.runs import STATUSES

from .db import db, runtime

bp = Blueprint("metrics", __name__)


class DatabaseCollector(Collector):
    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[GaugeMetricFamily]:
        runs = GaugeMetricFamily("forcebot_runs", "Runs by status", labels=["status"])
        counts = dict(
            self.session.execute(select(Run.status, func.count()).group_by(Run.status)).all()
        )
        for status in STATUSES:
            runs.add_metric([status], counts.get(status, 0))
        yield runs

        oldest = GaugeMetricFamily(
            "forcebot_oldest_queued_run_age_seconds", "Age of the oldest queued run"
        )
        first = self.session.scalar(select(func.min(Run.created_at)).where(Run.status == "queued"))
        oldest.add_metric([], (utcnow() - first).total_seconds() if first else 0.0)
        yield oldest

        status = GaugeMetricFamily(
            "forcebot_account_up", "1 when the account is active", labels=["account"]
        )
        expiry = GaugeMetricFamily(
            "forcebot_account_token_expires_in_seconds",
            "Seconds until the stored access token expires",
            labels=["account"],
        )
        usage = GaugeMetricFamily(
            "forcebot_account_api_usage_ratio",
            "Daily API requests used / allocated, as last reported by Salesforce",
            labels=["account"],
        )
        failures = GaugeMetricFamily(
            "forcebot_account_refresh_failures",
            "Consecutive failed token refreshes",
            labels=["account"],
        )
        now = utcnow()
        for account in self.session.scalars(select(Account)):
            status.add_metric([account.name], 1.0 if account.status == "active" else 0.0)
            if account.token_expires_at is not None:
                expiry.add_metric([account.name], (account.token_expires_at - now).total_seconds())
            if account.api_usage_max:
                usage.add_metric(
                    [account.name], (account.api_usage_used or 0) / account.api_usage_max
                )
            failures.add_metric([account.name], account.consecutive_refresh_failures or 0)
        yield from (status, expiry, usage, failures)
        yield from webhook_metrics(self.session)


def webhook_metrics(session: Session) -> Iterator[Any]:
    """Webhook deliveries by event and outcome (database); outbound requests (Redis)."""
    deliveries = GaugeMetricFamily(
        "forcebot_webhook_deliveries", "Webhook deliveries by event and outcome",
        labels=["event", "outcome"],
    )  # fmt: skip
    rows = session.execute(
        select(WebhookDelivery.event_type, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.event_type, WebhookDelivery.status
        )
    )
    for event, outcome, count in rows:
        deliveries.add_metric([event, outcome], count)
    yield deliveries
    requests = CounterMetricFamily(
        "forcebot_outbound_requests", "Outbound HTTP requests without an account and webhook "
        "sends, by host class (public, allowed, loopback, refused) and status or refusing rule",
        labels=["host_class", "status"],
    )  # fmt: skip
    try:
        counts = outbound.results(runtime())
    except Exception:  # noqa: BLE001 - a Redis outage must not hide the database metrics
        counts = {}
    for (host_class, status), count in sorted(counts.items()):
        requests.add_metric([host_class, status], count)
    yield requests


@bp.get("/metrics")
def metrics() -> Any:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
