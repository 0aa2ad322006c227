"""The bare baselines: what the platform is compared against.

- `celery`: a Celery app with the platform's broker settings (Redis, `acks_late`, prefetch 1,
  no result backend), run as `celery -A bench.bare worker -c 2` (prefork ×2). Its one task
  does the same GET the `bench-get` behavior does, with the same bearer token, straight
  through `requests`, and counts itself done with one Redis INCR — no database at all.
- `app`: a Flask app whose one endpoint inserts one row into `bench_bare` in the same
  database, served by gunicorn exactly as `forcebot web` serves ours (gthread, 2 × 4).
Both read their configuration from environment variables set by the bench.
"""

from __future__ import annotations

import os
from typing import Any

import redis as redis_lib
import requests
from celery import Celery
from flask import Flask, jsonify
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert

BROKER = os.environ.get("BENCH_BARE_BROKER", "redis://127.0.0.1:6390/1")

celery = Celery("bench-bare", broker=BROKER)
celery.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=None,
    task_default_queue="bench-bare",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_http: requests.Session | None = None
_redis: redis_lib.Redis | None = None


def _clients() -> tuple[requests.Session, redis_lib.Redis]:
    global _http, _redis
    if _http is None or _redis is None:
        _http = requests.Session()
        _redis = redis_lib.Redis.from_url(BROKER)
    return _http, _redis


@celery.task(name="bench.bare.get")
def get(url: str, token: str) -> None:
    http, client = _clients()
    response = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    client.incr("bench:bare:done")


@celery.task(name="bench.bare.ping", bind=True)
def ping(self: Any, key: str) -> None:
    _, client = _clients()
    client.set(f"forcebot:ping:{key}", self.request.hostname or "unknown", ex=300)


metadata = MetaData()
bare_rows = Table(
    "bench_bare",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payload", String(200)),
)


def create_app() -> Flask:
    url = os.environ["BENCH_BARE_DATABASE_URL"]
    from shared.db import make_engine

    engine = make_engine(url) if url.startswith("sqlite") else create_engine(url)
    flask_app = Flask("bench-bare")

    @flask_app.get("/ready")
    def ready() -> Any:
        return "ok"

    @flask_app.post("/bare")
    def bare() -> Any:
        with engine.begin() as conn:
            row = conn.execute(insert(bare_rows).values(payload="{}")).inserted_primary_key
        return jsonify({"id": row[0] if row else None}), 202

    return flask_app


def serve(port: int) -> None:
    """gunicorn with `forcebot web`'s options (2 workers × 4 threads, gthread)."""
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"127.0.0.1:{port}",
                "workers": 2,
                "threads": 4,
                "worker_class": "gthread",
                "timeout": 60,
                "accesslog": "-",
                "errorlog": "-",
                "preload_app": False,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app()

    _App().run()


if __name__ == "__main__":
    import sys

    serve(int(sys.argv[1]))
