"""P1, P3 and P4: the platform from outside (`/api/v1`, real processes), each against a bare
baseline measured in the same run.

- P1: N runs of `bench-get` (one `http.request` GET of /limits at the simulator), time from the
  first POST to all `succeeded`, vs N bare Celery tasks doing the same GET (bench.bare) on the
  same Redis with the same worker settings (prefork ×2, acks_late, prefetch 1). Rounds alternate
  bare/ours; the figure is the median time ratio (ours / bare; goal ≤ 1.25).
  POSTs go from 4 client threads; completion is watched with a read-only GROUP BY on `runs`
  every 0.25 s (paging the API would load the web server being measured).
- P3: N concurrent runs with the session expired and refresh-token rotation on; counts the
  refresh grants at the simulator (goal 1) and failed runs (goal 0).
- P4: `wrk -t2 -c16` POSTs to /api/v1/behaviors/bench-get/runs on `forcebot web` vs the bare
  Flask endpoint inserting one row (bench.bare), both on gunicorn 2×4; ratio = ours / bare
  requests per second (goal ≥ 0.5). No worker runs meanwhile. Skipped when `wrk` is absent.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from .env import Platform, free_port, load_average, wait_http


def _post_all(platform: Platform, behavior: str, payloads: list[dict[str, Any]]) -> list[int]:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda p: platform.post_run(behavior, p), payloads))


def _transactions(platform: Platform) -> tuple[int, int] | None:
    """PostgreSQL's commit and rollback counters for the bench database (None on SQLite)."""
    if platform.backend != "postgresql":
        return None
    from sqlalchemy import text

    with platform.runtime.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = conn.execute(
            text(
                "SELECT xact_commit, xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return int(row[0]), int(row[1])


def _ours_p1(platform: Platform, count: int) -> tuple[float, dict[str, int], str]:
    platform.clear_runs()
    worker = platform.start_worker(2)
    try:
        before = _transactions(platform)
        start = time.monotonic()
        _post_all(platform, "bench-get", [{}] * count)
        counts = platform.wait_runs(count, timeout=60 + count * 0.5)
        elapsed = time.monotonic() - start
        time.sleep(1.0)  # statistics reach pg_stat_database asynchronously (≈0.5 s)
        after = _transactions(platform)
    finally:
        worker.stop()
    per_run = ""
    if before and after:
        commits, rollbacks = (after[0] - before[0]) / count, (after[1] - before[1]) / count
        per_run = f"{commits:.1f} commits + {rollbacks:.1f} rollbacks per run (web + worker)"
    return elapsed, counts, per_run


def _bare_env(platform: Platform) -> dict[str, str]:
    return {
        **platform.env,
        "BENCH_BARE_BROKER": platform.bare_redis_url,
        "BENCH_BARE_DATABASE_URL": platform.database_url,
    }


def _bare_p1(platform: Platform, count: int) -> float:
    import redis as redis_lib
    from celery import Celery

    client = redis_lib.Redis.from_url(platform.bare_redis_url)
    client.flushdb()
    argv = [sys.executable, "-m", "celery", "-A", "bench.bare", "worker", "-c", "2"]
    argv += ["-P", "prefork", "-Q", "bench-bare", "-n", "bare@%h", "-l", "WARNING"]
    argv += ["--without-gossip", "--without-mingle"]
    worker = platform.child(argv, "bare-worker", _bare_env(platform))
    app = Celery("bench-bare-sender", broker=platform.bare_redis_url)
    app.conf.task_default_queue = "bench-bare"
    try:
        platform.wait_worker(
            "bench.bare.ping", platform.bare_redis_url, "bare@", worker, "bench-bare"
        )
        url = f"{platform.sim.instance_url}/services/data/v62.0/limits"
        start = time.monotonic()
        for _ in range(count):
            app.send_task("bench.bare.get", args=[url, platform.access_token])
        deadline = start + 60 + count * 0.5
        while int(client.get("bench:bare:done") or 0) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"bare tasks did not finish; log:\n{worker.tail()}")
            time.sleep(0.05)
        return time.monotonic() - start
    finally:
        worker.stop()
        app.close()
        client.close()


def p1(platform: Platform, count: int, rounds: int = 1) -> dict[str, Any]:
    ratios, ours_times, bare_times = [], [], []
    counts: dict[str, int] = {}
    per_run = ""
    web = platform.start_web()
    try:
        for _ in range(rounds):
            bare = _bare_p1(platform, count)
            ours, counts, per_run = _ours_p1(platform, count)
            bare_times.append(bare)
            ours_times.append(ours)
            ratios.append(ours / bare)
    finally:
        web.stop()
    result = {
        "count": count,
        "ratio": statistics.median(ratios),
        "ours_s": statistics.median(ours_times),
        "bare_s": statistics.median(bare_times),
        "succeeded": counts.get("succeeded", 0),
        "statuses": counts,
        "transactions": per_run,
        "load": load_average(),
    }
    print(
        f"P1 {platform.backend}: {count} GET runs  bare {result['bare_s']:.1f}s "
        f"({count / result['bare_s']:.0f}/s)  ours {result['ours_s']:.1f}s "
        f"({count / result['ours_s']:.0f}/s)  ratio {result['ratio']:.2f}x (goal <= 1.25)  "
        f"statuses {counts}  {per_run}  load {result['load']}"
    )
    return result


def p3(platform: Platform, count: int, concurrency: int = 4) -> dict[str, Any]:
    """Concurrent runs on an expired session, rotation on: refresh grants and failures."""
    platform.clear_runs()
    control = platform.sim.control
    web = platform.start_web()
    worker = platform.start_worker(concurrency)
    try:
        control.set_rotation(True)
        control.expire_sessions()
        control.reset_counters()
        _post_all(platform, "bench-get", [{}] * count)
        counts = platform.wait_runs(count, timeout=60 + count)
        sim_counters = control.counters()
    finally:
        worker.stop()
        web.stop()
        control.set_rotation(False)
    result = {
        "count": count,
        "refresh_grants": sim_counters.get("refresh_grants", -1),
        "rejected_refreshes": sim_counters.get("rejected_refreshes", -1),
        "failed": counts.get("failed", 0),
        "succeeded": counts.get("succeeded", 0),
        "failed_codes": platform.failed_codes(),
        "statuses": counts,
        "load": load_average(),
    }
    print(
        f"P3 {platform.backend}: {count} runs on an expired token (rotation on, worker -c "
        f"{concurrency})  refresh grants {result['refresh_grants']} (goal 1)  rejected "
        f"{result['rejected_refreshes']}  failed {result['failed']} (goal 0) "
        f"{result['failed_codes'] or ''}  statuses {counts}  load {result['load']}"
    )
    return result


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{"payload": {}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def _wrk(url: str, seconds: int, script: str) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", script, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} non-2xx responses under wrk:\n{out}")
    return float(match.group(1))


def p4(platform: Platform, seconds: int, rounds: int = 1) -> dict[str, Any] | None:
    if shutil.which("wrk") is None:
        print(f"P4 {platform.backend}: SKIPPED — `wrk` is not installed (apt-get install -y wrk)")
        return None
    from sqlalchemy import create_engine

    from .bare import metadata

    engine = create_engine(platform.database_url)
    metadata.create_all(engine)
    engine.dispose()
    script = platform.tmp / "post.lua"
    script.write_text(WRK_SCRIPT % platform.api_token)
    bare_port = free_port()
    ratios, ours_rates, bare_rates = [], [], []
    for _ in range(rounds):
        platform.clear_runs()
        bare = platform.child(
            [sys.executable, "-m", "bench.bare", str(bare_port)], "bare-web", _bare_env(platform)
        )
        try:
            wait_http(f"http://127.0.0.1:{bare_port}/ready", requests.Session(), bare)
            bare_rate = _wrk(f"http://127.0.0.1:{bare_port}/bare", seconds, str(script))
        finally:
            bare.stop()
        web = platform.start_web()
        try:
            url = f"{platform.web_url}/api/v1/behaviors/bench-get/runs"
            ours_rate = _wrk(url, seconds, str(script))
        finally:
            web.stop()
        bare_rates.append(bare_rate)
        ours_rates.append(ours_rate)
        ratios.append(ours_rate / bare_rate)
    result = {
        "ratio": statistics.median(ratios),
        "ours_rps": statistics.median(ours_rates),
        "bare_rps": statistics.median(bare_rates),
        "load": load_average(),
    }
    print(
        f"P4 {platform.backend}: wrk -t2 -c16 {seconds}s  bare insert {result['bare_rps']:.0f}/s"
        f"  POST runs {result['ours_rps']:.0f}/s  ratio {result['ratio']:.2f}x (goal >= 0.5)  "
        f"load {result['load']}"
    )
    return result


def run_all(backend: str, quick: bool) -> dict[str, Any]:
    sizes = {"p1": 20, "p3": 10, "p4": 2} if quick else {"p1": 2000, "p3": 200, "p4": 10}
    with Platform(backend) as platform:
        results: dict[str, Any] = {"backend": backend, "quick": quick}
        results["p1"] = p1(platform, sizes["p1"])
        results["p3"] = p3(platform, sizes["p3"])
        results["p4"] = p4(platform, sizes["p4"])
    return results


if __name__ == "__main__":
    print(json.dumps(run_all(sys.argv[1] if len(sys.argv) > 1 else "sqlite", True), indent=1))
