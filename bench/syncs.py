"""Sync throughput and API calls: the REST path vs a bare paged-GET + executemany script.

    python -m bench.syncs [--size 100000] [--database-url postgresql://postgres@127.0.0.1/x]

Both sides read the same simulator over HTTP with pages of 2,000 records. The bare script
keeps a token in a requests.Session, follows nextRecordsUrl and upserts each page with one
DB-API `executemany` (`INSERT … ON CONFLICT DO UPDATE`) into a two-column table. Ours is a real
sync run executed the way a worker does (claim, heartbeat, fenced page transactions with change
detection, change numbers, cursor and progress). With `--database-url` on PostgreSQL a
throwaway database is created and dropped. Also printed: API calls per run, REST vs Bulk.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
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


def _bare(sim: Any, token: str, database_url: str) -> float:
    """Paged GETs with a bare session and one executemany upsert per page."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bare (id VARCHAR(18) PRIMARY KEY, data TEXT, stamp TEXT)"))
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    upsert = (
        "INSERT INTO bare (id, data, stamp) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE "
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


def run(size: int = 100_000, database_url: str | None = None) -> float:
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
            bare_s = _bare(sim, token, settings.database_url)
            sim.control.clear_log()
            ours_s, progress = _ours(runtime, rest_id)
            rest_calls = len(sim.control.log())
            assert progress["records"] == size and progress["created"] == size
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--tiny", action="store_true", help="2,000 records, for CI")
    parser.add_argument("--database-url", default=os.environ.get("FORCEBOT_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    run(2000 if args.tiny else args.size, args.database_url)


if __name__ == "__main__":
    main()
