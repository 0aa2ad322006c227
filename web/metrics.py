"""GET /metrics: Prometheus exposition of what operators alert on.

Everything is read from the database (and the broker's queue length from Redis) at scrape time
(a custom collector), so every web process reports the same numbers and nothing has to be kept
in sync across gunicorn workers. The duration histograms and the Salesforce call counts are
computed over the step, attempt and HTTP-exchange rows the database still holds, so they fall
when old runs are pruned (run retention): read them as "over the retained runs", not as
process-lifetime counters, and prefer `increase()` over windows shorter than the retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import outbound
from shared.models import Account, Run, WebhookDelivery, utcnow
from shared.models.runs import STATUSES, Attempt, HttpExchange, RunStep

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
        # queued_at (when it was put on the queue), not created_at: a run created long ago
        # but re-queued is as old as its wait, and a scheduled slot is not a wait.
        first = self.session.scalar(
            select(func.min(func.coalesce(Run.queued_at, Run.created_at))).where(
                Run.status == "queued"
            )
        )
        oldest.add_metric([], max(0.0, (utcnow() - first).total_seconds()) if first else 0.0)
        yield oldest

        depth = GaugeMetricFamily(
            "forcebot_queue_depth",
            "Runs waiting: queued rows in the database, and messages on the broker's queue",
            labels=["source"],
        )
        depth.add_metric(["database"], counts.get("queued", 0))
        broker = self._broker_length()
        if broker is not None:
            depth.add_metric(["broker"], broker)
        yield depth

        yield self._histogram(
            "forcebot_step_duration_seconds",
            "Duration of finished run steps",
            select(RunStep.started_at, RunStep.finished_at).where(RunStep.finished_at.is_not(None)),
        )
        yield self._histogram(
            "forcebot_attempt_duration_seconds",
            "Duration of finished run attempts",
            select(Attempt.started_at, Attempt.finished_at).where(Attempt.finished_at.is_not(None)),
        )
        yield self._salesforce_calls()

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

    def _broker_length(self) -> int | None:
        try:
            return int(runtime().redis.llen(QUEUE_NAME))
        except Exception:  # noqa: BLE001 - no Redis configured or reachable: leave it out
            return None

    def _histogram(self, name: str, documentation: str, query: Any) -> HistogramMetricFamily:
        buckets = [0] * len(DURATION_BUCKETS)
        total = 0.0
        count = 0
        for started, finished in self.session.execute(query):
            seconds = max(0.0, (finished - started).total_seconds())
            total += seconds
            count += 1
            for i, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
        family = HistogramMetricFamily(name, documentation)
        family.add_metric(
            [],
            [(str(b), float(n)) for b, n in zip(DURATION_BUCKETS, buckets, strict=True)]
            + [("+Inf", float(count))],
            sum_value=total,
        )
        return family

    def _salesforce_calls(self) -> GaugeMetricFamily:
        """HTTP exchanges by status and Salesforce errorCode (from the error body's JSON)."""
        calls = GaugeMetricFamily(
            "forcebot_salesforce_calls",
            "Recorded Salesforce calls by HTTP status and errorCode ('' when none; status "
            "'none' when no response came)",
            labels=["status", "error_code"],
        )
        tally: dict[tuple[str, str], int] = {}
        rows = self.session.execute(
            select(HttpExchange.status, func.count())
            .where((HttpExchange.status < 400) | HttpExchange.status.is_(None))
            .group_by(HttpExchange.status)
        )
        for status, n in rows:
            tally[(str(status) if status is not None else "none", "")] = n
        for status, body in self.session.execute(
            select(HttpExchange.status, HttpExchange.response_body).where(
                HttpExchange.status >= 400
            )
        ):
            key = (str(status), _error_code(body))
            tally[key] = tally.get(key, 0) + 1
        for (status, code), n in sorted(tally.items()):
            calls.add_metric([status, code], n)
        return calls


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


QUEUE_NAME = "forcebot"
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _error_code(body: str | None) -> str:
    """Salesforce's REST errors are `[{message, errorCode}]`; token errors `{error}`."""
    import json

    try:
        data = json.loads(body or "")
    except ValueError:
        return ""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("errorCode", ""))[:64]
    if isinstance(data, dict):
        return str(data.get("errorCode") or data.get("error") or "")[:64]
    return ""


@bp.get("/metrics")
def metrics() -> Any:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
