"""`make chaos` (`python -m bench.chaos [--quick] [--backend sqlite|postgresql]`): what survives.

Each drill runs on a fresh `Platform` (bench.env: own database, own redis-server on a private
port, the simulator over HTTP, real `forcebot web`/`worker`/`beat` processes) and prints counts:

- R1: N Case creates (`bench-case`, Subject = a unique key) while the worker's whole process
  group is SIGKILLed 3 times and restarted. Counts succeeded, outcome_unknown, failed, lost
  (not terminal by the deadline) and duplicates at the simulator (Cases sharing a Subject).
  Goal: 0 lost, 0 duplicates.
- R2: N runs queued (no worker), then `FLUSHDB` of the broker, then a worker starts: seconds
  until all complete. R2': runs in flight, Redis killed and restarted empty on the same port:
  seconds from Redis being back until all complete, and failed runs. Goal: ≤ 15 s, 0 failed.
- R3: N GET runs while about 20 % of the simulator's REST calls fail (an injector adds one
  one-shot fault per 5 calls, rotating 503 SERVER_UNAVAILABLE, 403 REQUEST_LIMIT_EXCEEDED
  "ConcurrentPerOrgLongTxn Limit exceeded." and a stall); every run must succeed. Plus runs of a
  query of an unknown object, which must fail with Salesforce's errorCode (INVALID_TYPE).

`--quick` uses small sizes and the short reconciler thresholds the tests use, and a 3 s stall
instead of 30 s; the full sizes use production thresholds (that is what R2 measures).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .env import Platform, load_average

# The short timings of tests/e2e/runs_support.py: a lost message is noticed in seconds.
FAST_ENV = {
    "FORCEBOT_RUN_DISPATCH_EVERY_SECONDS": "0.5",
    "FORCEBOT_RUN_RECONCILE_EVERY_SECONDS": "1",
    "FORCEBOT_RUN_RECONCILE_QUEUED_AFTER_SECONDS": "2",
    "FORCEBOT_RUN_HEARTBEAT_EVERY_SECONDS": "0.5",
    "FORCEBOT_RUN_HEARTBEAT_STALE_SECONDS": "3",
    "FORCEBOT_RUN_RETRY_BASE_SECONDS": "0.2",
    "FORCEBOT_RUN_QUOTA_RECHECK_SECONDS": "1",
}

BAD_QUERY_BEHAVIOR = """
name: bench-bad-query
account: bench
steps:
  - id: q
    action: salesforce.query
    soql: "SELECT Id FROM NoSuchObject__c"
"""

TERMINAL = ("succeeded", "failed", "cancelled", "outcome_unknown")


def _post(platform: Platform, behavior: str, payloads: list[dict[str, Any]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: platform.post_run(behavior, p), payloads))


def _terminal(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in TERMINAL)


def r1(platform: Platform, count: int, env: dict[str, str]) -> dict[str, Any]:
    platform.start_web()
    platform.forcebot("beat", "-l", "WARNING", name="beat", extra_env=env)
    worker = platform.start_worker(2, **env)
    keys = [f"r1-{i:05d}" for i in range(count)]
    poster = threading.Thread(
        target=_post, args=(platform, "bench-case", [{"key": k} for k in keys])
    )
    poster.start()
    for kill in range(3):
        target = count * (kill + 1) // 4
        deadline = time.monotonic() + 120 + count * 0.3
        while _terminal(platform.status_counts()) < target and time.monotonic() < deadline:
            time.sleep(0.1)
        worker.kill()
        platform.children.remove(worker)
        worker = platform.start_worker(2, **env)
    poster.join()
    counts = platform.wait_runs(count, timeout=120 + count * 0.5, done=TERMINAL)
    subjects = collections.Counter(
        r.get("Subject") for r in platform.sim.control.records("Case", include_deleted=True)
    )
    failed_codes = platform.failed_codes()
    result = {
        "count": count,
        "succeeded": counts.get("succeeded", 0),
        # a failed run whose create a kill cut off (`outcome_unknown` is an error code)
        "outcome_unknown": failed_codes.get("outcome_unknown", 0),
        "failed": counts.get("failed", 0),
        "lost": count - _terminal(counts),
        "duplicates": sum(n - 1 for s, n in subjects.items() if s in set(keys) and n > 1),
        "failed_codes": failed_codes,
        "load": load_average(),
    }
    print(
        f"R1 {platform.backend}: {count} Case creates, worker group SIGKILLed 3x  succeeded "
        f"{result['succeeded']}  outcome_unknown {result['outcome_unknown']}  failed "
        f"{result['failed']} {result['failed_codes'] or ''}  lost {result['lost']} (goal 0)  "
        f"duplicates {result['duplicates']} (goal 0)  load {result['load']}"
    )
    return result


def r2(platform: Platform, count: int, env: dict[str, str], wait: float = 300) -> dict[str, Any]:
    """R2 and R2'; `wait` bounds each of the two waits for the runs to end (seconds)."""
    platform.start_web()
    platform.forcebot("beat", "-l", "WARNING", name="beat", extra_env=env)
    # Flush: runs queued with no worker, the broker flushed, then a worker comes.
    _post(platform, "bench-get", [{}] * count)
    platform.redis.flushdb()
    flushed_at = time.monotonic()
    worker = platform.start_worker(2, **env)
    counts = platform.wait_runs(count, timeout=wait)
    flush_seconds = time.monotonic() - flushed_at
    flush_counts = counts
    # Restart empty: runs in flight, Redis killed, back empty on the same port.
    platform.clear_runs()
    poster = threading.Thread(target=_post, args=(platform, "bench-get", [{}] * count))
    poster.start()
    deadline = time.monotonic() + 120
    while _terminal(platform.status_counts()) < count // 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    platform.kill_redis()
    time.sleep(1)
    platform.start_redis()
    back_at = time.monotonic()
    poster.join()  # POSTs during the outage may fail; count what was accepted
    accepted = sum(platform.status_counts().values())
    counts = platform.wait_runs(accepted, timeout=wait, done=TERMINAL)
    restart_seconds = time.monotonic() - back_at
    worker.stop()
    result = {
        "count": count,
        "flush_seconds": flush_seconds,
        "flush_statuses": flush_counts,
        "restart_seconds": restart_seconds,
        "restart_accepted": accepted,
        "restart_statuses": counts,
        "failed": counts.get("failed", 0),
        "lost": accepted - _terminal(counts),
        "failed_codes": platform.failed_codes(),
        "load": load_average(),
    }
    if result["lost"] or result["failed"]:
        # Keep the processes' logs (beat, worker, web, redis): the platform's directory goes.
        kept = Path(tempfile.mkdtemp(prefix=f"forcebot-r2-{platform.backend}-logs-"))
        for log in platform.tmp.glob("*.log"):
            shutil.copy(log, kept)
        result["logs"] = str(kept)
        print(f"R2' {platform.backend}: runs left unfinished; process logs kept in {kept}")
    print(
        f"R2 {platform.backend}: {count} queued, FLUSHDB  all complete after "
        f"{flush_seconds:.1f}s (goal <= 15) {flush_counts}\n"
        f"R2' {platform.backend}: Redis killed and restarted empty with runs in flight  "
        f"{accepted} accepted, terminal {restart_seconds:.1f}s after Redis was back  "
        f"lost {result['lost']} (goal 0)  "
        f"failed {result['failed']} (goal 0) {result['failed_codes'] or ''} {counts}  "
        f"load {result['load']}"
    )
    return result


def _injector(platform: Platform, stop: threading.Event, stall: float) -> collections.Counter:
    """One one-shot fault per 5 REST calls (≈20 %), rotating three kinds."""
    control = platform.sim.control
    kinds = [
        {"status": 503, "error_code": "SERVER_UNAVAILABLE"},
        {
            "status": 403,
            "error_code": "REQUEST_LIMIT_EXCEEDED",
            "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
        },
        {"status": None, "delay_seconds": stall},
    ]
    injected: collections.Counter = collections.Counter()
    # REST calls seen by the in-process simulator (its api_calls counter skips /limits).
    state = platform.sim.state
    seen = [0]
    original = state.record_request

    def counting(entry: dict[str, Any]) -> None:
        if str(entry.get("path", "")).startswith("/services/data/v"):
            seen[0] += 1
        original(entry)

    state.record_request = counting
    last = 0
    while not stop.is_set():
        calls = seen[0]
        while calls - last >= 5:
            kind = kinds[sum(injected.values()) % len(kinds)]
            control.add_fault("/services/data/", count=1, host="instance", **kind)
            injected[str(kind.get("error_code", "stall"))] += 1
            last += 5
        time.sleep(0.02)
    state.record_request = original
    return injected


def r3(platform: Platform, count: int, env: dict[str, str], stall: float) -> dict[str, Any]:
    from shared.behaviors.store import save_behavior

    with platform.runtime.Session.begin() as session:
        save_behavior(session, BAD_QUERY_BEHAVIOR)
    platform.start_web()
    platform.forcebot("beat", "-l", "WARNING", name="beat", extra_env=env)
    platform.start_worker(2, **env)
    stop = threading.Event()
    holder: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: holder.update(injected=_injector(platform, stop, stall)), daemon=True
    )
    thread.start()
    bad = max(2, count // 20)
    try:
        _post(platform, "bench-get", [{}] * count)
        _post(platform, "bench-bad-query", [{}] * bad)
        counts = platform.wait_runs(count + bad, timeout=180 + count * 2, done=TERMINAL)
    finally:
        stop.set()
        thread.join(30)
        platform.sim.control.clear_faults()
    from sqlalchemy import select

    from shared.models import Run

    by_behavior: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    codes: collections.Counter = collections.Counter()
    with platform.runtime.Session() as session:
        for run in session.scalars(select(Run)):
            by_behavior[run.behavior_name][run.status] += 1
            if run.status == "failed":
                error = run.error or {}
                codes[f"{run.behavior_name}:{error.get('code')}"] += 1
    result = {
        "count": count,
        "injected": dict(holder.get("injected", {})),
        "get_statuses": dict(by_behavior["bench-get"]),
        "bad_statuses": dict(by_behavior["bench-bad-query"]),
        "failed_codes": dict(codes),
        "lost": count + bad - _terminal(counts),
        "load": load_average(),
    }
    print(
        f"R3 {platform.backend}: {count} GET runs with faults injected {result['injected']}  "
        f"GET runs {result['get_statuses']} (goal all succeeded)  {bad} malformed-SOQL runs "
        f"{result['bad_statuses']}  failed by code {result['failed_codes']}  lost "
        f"{result['lost']}  load {result['load']}"
    )
    return result


def run_all(
    backend: str, quick: bool, only: tuple[str, ...] = ("r1", "r2", "r3")
) -> dict[str, Any]:
    env = FAST_ENV if quick else {}
    sizes = {"r1": 30, "r2": 20, "r3": 20} if quick else {"r1": 300, "r2": 200, "r3": 60}
    results: dict[str, Any] = {"backend": backend}
    if "r1" in only:
        with Platform(backend) as platform:
            results["r1"] = r1(platform, sizes["r1"], env)
    if "r2" in only:
        with Platform(backend) as platform:
            results["r2"] = r2(platform, sizes["r2"], env)
    if "r3" in only:
        with Platform(backend) as platform:
            results["r3"] = r3(platform, sizes["r3"], env, 3.0 if quick else 30.0)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short thresholds")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", action="append", choices=["r1", "r2", "r3"], help="repeatable")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every Platform stops its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run_all(backend, args.quick, tuple(args.only or ("r1", "r2", "r3")))


if __name__ == "__main__":
    main()
