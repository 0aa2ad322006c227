"""Workers and queues (Celery Flower's core, from our own tables and Celery's inspect).

- Workers online: `inspect().stats()` / `.active()` with a short timeout (a worker that does not
  answer within it is not listed; the page says how long it waited). Pool size is the
  worker's `max-concurrency`; its current runs are the `worker.runs.execute` tasks it holds.
- Queue depth: the broker's message count for the `forcebot` queue (messages waiting, not
  counting ones a worker has taken but not acknowledged). The oldest queued age comes from the
  runs table (`queued_at` of the oldest run with status queued), so it also counts runs that
  are in the outbox but not yet in Redis.
- Runs per minute by status over the last hour: runs that *finished* in each minute, from the
  runs table, drawn as an inline SVG (stacked bars) on the server.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template
from markupsafe import Markup
from sqlalchemy import func, select

from shared.models import Run, utcnow

from ..db import db
from . import live_template

bp = Blueprint("workers", __name__, url_prefix="/workers")

INSPECT_TIMEOUT = 1.0
QUEUE = "forcebot"
CHART_STATUSES = (("succeeded", "#1f7a3a"), ("failed", "#b3261e"), ("cancelled", "#8a94a3"))


def workers_online(timeout: float = INSPECT_TIMEOUT) -> tuple[list[dict[str, Any]], str | None]:
    """[{name, pool, processed, active_runs}] from Celery's inspect; and an error, if any."""
    from worker.celery_app import celery

    try:
        inspect = celery.control.inspect(timeout=timeout)
        stats = inspect.stats() or {}
        active = inspect.active() or {}
    except Exception as exc:  # the broker is down or unreachable: say so on the page
        return [], f"{type(exc).__name__}: {exc}"
    workers = []
    for name, info in sorted(stats.items()):
        pool = info.get("pool") or {}
        runs = [
            task["args"][0]
            for task in active.get(name, [])
            if task.get("name") == "worker.runs.execute" and task.get("args")
        ]
        workers.append(
            {
                "name": name,
                "pool": pool.get("max-concurrency"),
                "processed": sum((info.get("total") or {}).values()),
                "active_runs": runs,
            }
        )
    return workers, None


def queue_depth() -> tuple[int | None, str | None]:
    """Messages waiting in the broker's queue (None and the error when it cannot be read)."""
    from worker.celery_app import celery

    try:
        with celery.connection_for_read() as connection:
            declared = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
            return int(declared.message_count), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def runs_per_minute(now: Any, minutes: int = 60) -> list[dict[str, Any]]:
    """One entry per minute (oldest first): {at, counts: {status: n}}."""
    start = now - timedelta(minutes=minutes)
    rows = db().execute(select(Run.finished_at, Run.status).where(Run.finished_at >= start))
    counts: Counter[tuple[int, str]] = Counter()
    for finished_at, status in rows:
        index = int((finished_at - start).total_seconds() // 60)
        if 0 <= index < minutes:
            counts[(index, status)] += 1
    return [
        {
            "at": start + timedelta(minutes=i),
            "counts": {status: counts[(i, status)] for status, _ in CHART_STATUSES},
        }
        for i in range(minutes)
    ]


def chart_svg(series: list[dict[str, Any]], width: int = 720, height: int = 160) -> Markup:
    """Stacked bars, one per minute; a <title> on each bar gives its numbers."""
    peak = max([sum(m["counts"].values()) for m in series] + [1])
    bar = width / len(series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20}" '
        'width="100%" role="img" aria-label="Runs finished per minute, last hour" '
        'id="runs-chart">',
        f'<text x="0" y="10" font-size="10" fill="#5b6675">{peak}/min</text>',
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#dde2e8"/>',
    ]
    for i, minute in enumerate(series):
        y = float(height)
        label = ", ".join(f"{n} {status}" for status, n in minute["counts"].items() if n)
        for status, colour in CHART_STATUSES:
            n = minute["counts"][status]
            if not n:
                continue
            h = height * n / peak
            y -= h
            parts.append(
                f'<rect class="bar {status}" x="{i * bar + 1:.1f}" y="{y:.1f}" '
                f'width="{max(bar - 2, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{minute['at']:%H:%M} UTC: {label}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height + 15}" font-size="10" fill="#5b6675">-60 min</text>')
    parts.append(
        f'<text x="{width}" y="{height + 15}" font-size="10" fill="#5b6675" '
        'text-anchor="end">now</text></svg>'
    )
    return Markup("".join(parts))


@bp.get("/")
def index() -> Any:
    now = utcnow()
    workers, inspect_error = workers_online()
    depth, depth_error = queue_depth()
    oldest = db().scalar(
        select(
            func.min(func.coalesce(Run.queued_at, Run.created_at), type_=Run.created_at.type)
        ).where(Run.status == "queued")
    )
    queued = db().scalar(select(func.count()).select_from(Run).where(Run.status == "queued"))
    running = (
        db()
        .execute(select(Run.id, Run.behavior_name, Run.worker).where(Run.status == "running"))
        .all()
    )
    series = runs_per_minute(now)
    totals = Counter()
    for minute in series:
        totals.update(minute["counts"])
    return render_template(
        live_template("workers/index.html", "workers/_live.html"),
        workers=workers,
        inspect_error=inspect_error,
        inspect_timeout=INSPECT_TIMEOUT,
        depth=depth,
        depth_error=depth_error,
        oldest=oldest,
        oldest_age=(now - oldest).total_seconds() if oldest else None,
        queued=queued,
        running=running,
        chart=chart_svg(series),
        totals=dict(totals),
    )
