"""Sync throughput and API calls: the REST path vs a bare paged-GET + executemany script.

    python -m bench.syncs [--size 100000] [--database-url postgresql://postgres@127.0.0.1/x]
    python -m bench.syncs --rss [--size 1000000]     # worker peak RSS (bench.syncs.rss)

Both sides read the same simulator over HTTP with pages of 2,000 records. The bare script
keeps a token in a requests.Session, follows nextRecordsUrl and upserts each page with one
DB-API `executemany` (`INSERT … ON CONFLICT DO UPDATE`) into a two-column table. Ours is a real
sync run executed the way a worker does (claim, heartbeat, fenced page transactions with change
detection, change numbers, cursor and progress). With `--database-url` on PostgreSQL a
throwaway database is created and dropped. Bare and ours alternate (two rounds by default, ours
starting from an empty table each time) and each side's best round counts. Also printed: API
calls per run, REST vs Bulk.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url

from bench.client import _link, client_token
from shared.config import Settings
from shared.migrate import upgrade
from shared.runtime import Runtime

SOQL = (
    "SELECT Id, SystemModstamp, IsDeleted, Email, LastName FROM Contact ORDER BY SystemModstamp, Id"
)


def _throwaway_pg(base: str) -> tuple[str, Any]:
    url = make_url(base)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    target = url.set(database=name, drivername="postgresql+psycopg")
    return target.render_as_string(hide_password=False), drop


def _bare(sim: Any, token: str, database_url: str, table: str = "bare") -> float:
    """Paged GETs with a bare session and one executemany upsert per page (into a new table)."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE {table} (id VARCHAR(18) PRIMARY KEY, data TEXT, stamp TEXT)")
        )
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    upsert = (
        f"INSERT INTO {table} (id, data, stamp) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
        "SET data = excluded.data, stamp = excluded.stamp"
    )
    start = time.perf_counter()
    url = f"{sim.instance_url}/services/data/v62.0/queryAll"
    page = http.get(url, params={"q": SOQL}, timeout=60).json()
    raw = engine.raw_connection()
    try:
        sql = upsert if engine.dialect.name == "postgresql" else upsert.replace("%s", "?")
        while True:
            rows = [
                (r["Id"], json.dumps(r), r["SystemModstamp"]) for r in page.get("records") or []
            ]
            cursor = raw.cursor()
            cursor.executemany(sql, rows)
            raw.commit()
            if page.get("done", True):
                break
            page = http.get(sim.instance_url + page["nextRecordsUrl"], timeout=60).json()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - start


def _ours(runtime: Runtime, sync_id: int) -> tuple[float, dict[str, Any]]:
    from shared import runs
    from shared.models import Run
    from shared.syncs import execute_sync, start_sync_run

    with runtime.Session.begin() as session:
        run_id = start_sync_run(session, sync_id).id
    start = time.perf_counter()
    with runtime.Session.begin() as session:
        claim = runs.claim_for_execution(session, run_id, "bench:1")
    assert claim is not None
    outcome = execute_sync(runtime, claim)
    seconds = time.perf_counter() - start
    assert outcome.status == "succeeded", outcome.error
    with runtime.Session() as session:
        progress = dict(session.get(Run, run_id).progress or {})
    return seconds, progress


def _forget(runtime: Runtime, sync_id: int) -> None:
    """Empty the local copy and the cursor, so the next run is a first backfill again."""
    from shared.models import RecordSequence, Run, Sync, SyncedRecord

    with runtime.Session.begin() as session:
        session.execute(delete(SyncedRecord))
        session.execute(delete(RecordSequence))
        session.execute(delete(Run).where(Run.sync_id == sync_id))
        sync = session.get(Sync, sync_id)
        sync.watermark_modstamp = sync.watermark_id = None
        sync.records_total = sync.records_deleted = 0
        sync.last_run_id = None


def run(size: int = 100_000, database_url: str | None = None, rounds: int = 2) -> float:
    from forcebot.supervisor import embedded_redis_command, free_port, wait_for_port
    from shared.models import Sync
    from simulator.server import SimulatorServer

    drop = None
    with tempfile.TemporaryDirectory() as tmp, SimulatorServer() as sim:
        if database_url and database_url.startswith("postgresql"):
            database_url, drop = _throwaway_pg(database_url)
        database_url = database_url or f"sqlite:///{tmp}/bench.db"
        port = free_port()
        redis_proc = subprocess.Popen(embedded_redis_command(Path(tmp), port))
        wait_for_port("127.0.0.1", port, 15)
        settings = Settings(
            instance_dir=Path(tmp),
            database_url=database_url,
            redis_url=f"redis://127.0.0.1:{port}/0",
            public_url="http://127.0.0.1:5000",
            secret_key="x" * 32,
            encryption_keys=[Fernet.generate_key().decode()],
        )
        runtime = Runtime(settings)
        try:
            upgrade(settings.database_url)
            account_id = _link(runtime, sim, settings.oauth_callback_url)
            seeded = time.perf_counter()
            sim.control.seed("Contact", size, per_timestamp=7)
            seeded = time.perf_counter() - seeded
            token = runtime.crypto.decrypt(client_token(runtime, account_id))
            with runtime.Session.begin() as session:
                # The demo flow imports the package, whose `contacts` sync would be a second
                # sync of the same account and object.
                session.execute(delete(Sync))
                rest = Sync(
                    name="rest",
                    account_id=account_id,
                    object="Contact",
                    fields=["Email", "LastName"],
                    api="rest",
                )
                session.add(rest)
                session.flush()
                rest_id = rest.id
            # Bare, ours, bare, ours: each side's best round counts (the machine is shared, and
            # a burst of someone else's load should not decide the ratio).
            bares, ours = [], []
            for round_ in range(rounds):
                bares.append(_bare(sim, token, settings.database_url, f"bare{round_}"))
                if round_:
                    _forget(runtime, rest_id)
                sim.control.clear_log()
                seconds, progress = _ours(runtime, rest_id)
                rest_calls = len(sim.control.log())
                assert progress["records"] == size and progress["created"] == size, progress
                ours.append(seconds)
            bare_s, ours_s = min(bares), min(ours)
            # The same records again through Bulk API 2.0, from the start (a full re-read).
            with runtime.Session.begin() as session:
                session.get(Sync, rest_id).api = "bulk"
                session.get(Sync, rest_id).watermark_modstamp = None
            sim.control.clear_log()
            bulk_s, bulk_progress = _ours(runtime, rest_id)
            bulk_calls = len(sim.control.log())
            assert bulk_progress["api"] == "bulk" and bulk_progress["records"] == size
        finally:
            runtime.close()
            redis_proc.terminate()
            redis_proc.wait(10)
            if drop is not None:
                drop()
    backend = make_url(settings.database_url).get_backend_name()
    ratio = bare_s / ours_s
    print(
        f"syncs: {size} records into {backend} (seeded in {seeded:.1f}s)  "
        f"bare paged GET + executemany {size / bare_s:,.0f} rec/s  "
        f"REST sync {size / ours_s:,.0f} rec/s  throughput ratio {ratio:.2f}x (goal >= 0.70)"
    )
    print(
        f"syncs: API calls per {size} records  REST {rest_calls}  Bulk {bulk_calls} "
        f"(full re-read by Bulk: {bulk_s:.1f}s, {bulk_progress['unchanged']} unchanged)"
    )
    return ratio


def rss(size: int = 1_000_000, backend: str = "postgresql", every: float = 0.5) -> dict[str, Any]:
    """Sync `size` Contacts through a real `forcebot worker -c 1`; sample its tree's RSS.

    The simulator holds the records in this (the bench) process, so its memory is not the
    worker's. The sync is REST (`api: rest`, pages of 2,000). Returned and printed: the peak
    of the worker tree's summed RSS, and the tree's RSS when the run had 0/25/50/75/100 % of the
    records (flat means those stay level while the record count grows); see `tree_rss`.
    """
    import psutil

    from bench.env import Platform, load_average
    from shared.models import Account, Run, Sync

    with Platform(backend) as platform:
        started = time.perf_counter()
        platform.sim.state.seed("Contact", size, per_timestamp=7)
        seeded = time.perf_counter() - started
        with platform.runtime.Session.begin() as session:
            account_id = session.query(Account.id).filter(Account.name == "bench").scalar()
            session.query(Sync).delete()
            sync = Sync(
                name="rss",
                account_id=account_id,
                object="Contact",
                fields=["Email", "LastName"],
                api="rest",
            )
            session.add(sync)
            session.flush()
            sync_id = sync.id
        worker = platform.start_worker(concurrency=1)
        platform.start_web()
        assert worker.process is not None
        tree = psutil.Process(worker.process.pid)

        def tree_rss() -> tuple[int, int, int]:
            """(summed RSS, summed PSS, largest single RSS) of the worker's process tree.

            RSS counts the pages a forked child still shares with its parent in both; PSS
            splits shared pages between their users, so its sum is what the tree really holds.
            """
            rss_sum = pss_sum = largest = 0
            for proc in [tree, *tree.children(recursive=True)]:
                try:
                    info = proc.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                rss_sum += info.rss
                pss_sum += getattr(info, "pss", info.rss)
                largest = max(largest, info.rss)
            return rss_sum, pss_sum, largest

        idle = tree_rss()
        response = platform.http.post(f"{platform.web_url}/api/v1/syncs/{sync_id}/runs", json={})
        assert response.status_code == 202, response.text
        run_id = int(response.json()["id"])
        start = time.perf_counter()
        samples: list[tuple[int, tuple[int, int, int]]] = []  # (records so far, tree_rss())
        status, error = "queued", None
        while status not in ("succeeded", "failed", "cancelled"):
            time.sleep(every)
            with platform.runtime.Session() as session:
                run = session.get(Run, run_id)
                status, error = run.status, run.error
                records = int((run.progress or {}).get("records") or 0)
            samples.append((records, tree_rss()))
        seconds = time.perf_counter() - start
        load = load_average()
    assert status == "succeeded", (status, error)
    mb = 1024 * 1024
    peaks = [max(m[i] for _, m in samples) / mb for i in range(3)]
    marks = {}
    for share in (0, 25, 50, 75, 100):
        wanted = size * share // 100
        mark = next((m for n, m in samples if n >= wanted), samples[-1][1])
        marks[share] = round(mark[1] / mb)
    print(
        f"syncs rss: {size:,} records through a worker -c 1 on {backend} in {seconds:.0f}s "
        f"({size / seconds:,.0f} rec/s; simulator seeded in {seeded:.0f}s)  worker tree idle "
        f"RSS {idle[0] / mb:.0f} MB / PSS {idle[1] / mb:.0f} MB; peak: tree RSS {peaks[0]:.0f} "
        f"MB, tree PSS {peaks[1]:.0f} MB, largest process RSS {peaks[2]:.0f} MB (goal < 200); "
        "tree PSS at 0/25/50/75/100 % of the records: "
        + " / ".join(f"{marks[k]}" for k in sorted(marks))
        + f" MB  load {load}"
    )
    return {"peaks_mb": peaks, "idle": idle, "pss_marks_mb": marks, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--tiny", action="store_true", help="2,000 records, for CI")
    parser.add_argument("--database-url", default=os.environ.get("FORCEBOT_BENCH_DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=2, help="bare/ours rounds (best counts)")
    parser.add_argument(
        "--rss",
        action="store_true",
        help="instead: a real `forcebot worker` syncs --size records (default 1,000,000); "
        "peak RSS of its process tree, sampled",
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the Platform stops its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.rss:
        size = 2000 if args.tiny else (args.size if args.size != 100_000 else 1_000_000)
        rss(size, "sqlite" if args.database_url == "sqlite" else "postgresql")
        return
    run(2000 if args.tiny else args.size, args.database_url, args.rounds)


if __name__ == "__main__":
    main()
