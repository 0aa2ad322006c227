"""Run every benchmark: `python -m bench` (or `make bench`); `--quick` for CI-sized runs.

P1/P3/P4 (bench.platform) run on SQLite and on a throwaway PostgreSQL database
(`--backend` picks one). Full-size runs append a dated row per backend, with the commit and the
load average, to bench/RESULTS.md; `--quick` runs write nothing unless `--record` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import client, platform, schedules, templates

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS.parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def row(results: dict[str, Any], label: str) -> str:
    p1, p3, p4 = results["p1"], results["p3"], results["p4"]
    p4_text = "skipped (no wrk)" if p4 is None else (
        f"{p4['ratio']:.2f}× ({p4['ours_rps']:.0f}/s vs {p4['bare_rps']:.0f}/s; load {p4['load']})"
    )  # fmt: skip
    return (
        f"| {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} | {commit()} | {label} | "
        f"{results['backend']} | "
        f"{p1['ratio']:.2f}× ({p1['count']} runs: {p1['count'] / p1['ours_s']:.0f}/s vs "
        f"{p1['count'] / p1['bare_s']:.0f}/s; {p1['succeeded']} succeeded; "
        f"{p1['transactions'] + '; ' if p1['transactions'] else ''}load {p1['load']}) | "
        f"{p3['refresh_grants']} grants, {p3['failed']} failed of {p3['count']} "
        f"(load {p3['load']}) | {p4_text} |"
    )


def record(lines: list[str]) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\n"
            "Written by `python -m bench`. Ratios are ours / bare baseline measured in the same "
            "run (P1: time, goal ≤ 1.25×; P4: requests/s, goal ≥ 0.5×); P3 goal: 1 refresh "
            "grant, 0 failed. Load is the 1/5/15-minute load average when the figure was taken "
            "(the machine has 2 cores and is shared).\n\n"
            "| date (UTC) | commit | label | db | P1 | P3 | P4 |\n"
            "|---|---|---|---|---|---|---|\n"
        )
    RESULTS.write_text(with_rows(RESULTS.read_text(), lines))


TABLE_HEADER = "| date (UTC) | commit | label | db | P1 | P3 | P4 |"


def with_rows(text: str, lines: list[str]) -> str:
    """`text` with `lines` added at the end of the P1/P3/P4 table, not after the prose below it."""
    rows = text.split("\n")
    if TABLE_HEADER not in rows:
        return (
            text.rstrip("\n")
            + "\n\n"
            + TABLE_HEADER
            + "\n|---|---|---|---|---|---|---|\n"
            + ("\n".join(lines) + "\n")
        )
    end = rows.index(TABLE_HEADER)
    while end < len(rows) and rows[end].startswith("|"):
        end += 1
    return "\n".join(rows[:end] + lines + rows[end:])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only-platform", action="store_true", help="P1, P3 and P4 only")
    parser.add_argument("--record", action="store_true", help="write RESULTS.md even if quick")
    parser.add_argument("--label", default="", help="a word for the RESULTS.md row")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every Platform stops its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print("forcebot benchmarks (ratio = ours / bare baseline, measured in this run)")
    if not args.only_platform:
        templates.run()
        client.run()
        schedules.run(200 if args.quick else 10_000)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:  # each row is written as soon as its backend is done
        line = row(platform.run_all(backend, args.quick), args.label)
        if not args.quick or args.record:
            record([line])
            print(f"appended a row to {RESULTS}")


if __name__ == "__main__":
    main()
