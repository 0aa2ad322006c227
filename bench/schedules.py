"""Schedule dispatch: N enabled schedules all due at once, fired by one dispatcher.

Lag is measured per run from the moment all N schedules are due and stored (their slot is
a second earlier; seeding them is not counted) to the commit of the batch that wrote its
run row. The baseline is a bare loop that inserts the same run rows in the same batch size
with one executemany INSERT and a commit per batch, and does nothing else (no claim, no
skip check, no behavior or payload validation, no compare-and-swap). Each side runs twice,
alternating, and its best run (by p99) is printed: the machine may be shared. SQLite in a
temporary file by default; with FORCEBOT_BENCH_DATABASE_URL (a PostgreSQL server URL) it
creates a throwaway database there and drops it afterwards.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared.behaviors.store import save_behavior
from shared.db import make_engine, make_session_factory
from shared.migrate import upgrade
from shared.models import Base, Run, Schedule, utcnow
from shared.schedules import dispatch_schedules
from shared.schedules.dispatch import BATCH_SIZE, slot_key

BEHAVIOR = """
name: bench-noop
inputs:
  n: {type: integer, required: true}
steps:
  - {id: s, action: set, vars: {x: "{{ inputs.n }}"}}
"""


def _empty(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


def _seed(factory: sessionmaker[Session], count: int) -> Any:
    _empty(factory)
    with factory.begin() as session:
        save_behavior(session, BEHAVIOR)
    slot = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    with factory.begin() as session:
        session.execute(
            insert(Schedule),
            [
                {
                    "name": f"bench-{i}",
                    "behavior_name": "bench-noop",
                    # Half intervals, half crons in zones (ten distinct timings in all).
                    "every_seconds": 3600 * (1 + i % 5) if i % 2 else None,
                    "cron": None if i % 2 else f"{i % 5} * * * *",
                    "payload": {"n": i},
                    "timezone": "UTC" if i % 2 else "Europe/Paris",
                    "enabled": True,
                    "skipped_slots": 0,
                    "next_run_at": slot,
                    "created_at": slot,
                    "updated_at": slot,
                }
                for i in range(count)
            ],
        )
    return slot


def _percentiles(lags: list[float]) -> tuple[float, float]:
    lags = sorted(lags)
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return statistics.median(lags), p99


def _dispatcher(factory: sessionmaker[Session], count: int) -> tuple[float, float, float]:
    _seed(factory, count)
    start = time.time()  # every schedule is due (and present) from here on
    lags: list[float] = []
    fired = 0
    while fired < count:
        report = dispatch_schedules(factory, max_batches=1)
        if not report.run_ids:
            break
        done = time.time()
        fired += len(report.run_ids)
        lags.extend([done - start] * len(report.run_ids))
    assert fired == count, f"fired {fired} of {count}"
    return (*_percentiles(lags), time.time() - start)


def _bare(factory: sessionmaker[Session], count: int) -> tuple[float, float, float]:
    slot = _seed(factory, count)
    start = time.time()
    lags: list[float] = []
    now = utcnow()
    rows = [
        {
            "behavior_name": "bench-noop",
            "status": "queued",
            "trigger": "schedule",
            "payload": {"n": i},
            "idempotency_key": slot_key(i + 1, slot),
            "max_attempts": 5,
            "attempts": 0,
            "retries": 0,
            "cancel_requested": False,
            "schedule_id": None,
            "slot": slot,
            "created_at": now,
            "queued_at": now,
        }
        for i in range(count)
    ]
    for offset in range(0, count, BATCH_SIZE):
        batch = rows[offset : offset + BATCH_SIZE]
        with factory.begin() as session:
            session.execute(insert(Run), batch)
        lags.extend([time.time() - start] * len(batch))
    return (*_percentiles(lags), time.time() - start)


@contextmanager
def _database() -> Iterator[str]:
    server = os.environ.get("FORCEBOT_BENCH_DATABASE_URL")
    if not server:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"forcebot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(count: int = 10_000) -> float:
    with _database() as url:
        return _run(url, count)


def _run(url: str, count: int) -> float:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        # Alternate the two, twice, and keep each one's best run: the machine is shared, and
        # a burst of someone else's load should not decide the ratio.
        bares, ours = [], []
        for _ in range(2):
            bares.append(_bare(factory, count))
            ours.append(_dispatcher(factory, count))
        bare_p50, bare_p99, bare_total = min(bares, key=lambda r: r[1])
        ours_p50, ours_p99, ours_total = min(ours, key=lambda r: r[1])
    finally:
        engine.dispose()
    ratio = ours_p99 / bare_p99
    print(
        f"schedules: {count} due at once on {engine.dialect.name}  "
        f"bare insert p50 {bare_p50:.2f}s p99 {bare_p99:.2f}s ({bare_total:.2f}s)  "
        f"dispatcher p50 {ours_p50:.2f}s p99 {ours_p99:.2f}s ({ours_total:.2f}s)  "
        f"ratio p99 {ratio:.2f}x"
    )
    return ratio
