"""The benchmark and chaos harnesses at their quick sizes, on real parts (bench.env).

These prove the harnesses run and hold their invariants; they never assert speed.
SQLite always; PostgreSQL too when FORCEBOT_TEST_DATABASE_URL is set (the bench makes and drops
its own database on that server).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench import chaos, platform
from bench.env import Platform

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("FORCEBOT_TEST_DATABASE_URL") else [])


@pytest.fixture(params=BACKENDS)
def bench_platform(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    if request.param == "postgresql":
        monkeypatch.setenv("FORCEBOT_BENCH_DATABASE_URL", os.environ["FORCEBOT_TEST_DATABASE_URL"])
    with Platform(request.param) as p:
        yield p


def test_p1_every_run_succeeds_and_a_ratio_is_reported(bench_platform: Platform) -> None:
    result = platform.p1(bench_platform, 6)
    assert result["succeeded"] == 6 and result["statuses"] == {"succeeded": 6}
    assert result["ratio"] > 0 and result["bare_s"] > 0


def test_p3_expired_token_with_rotation_refreshes_once_and_nothing_fails(
    bench_platform: Platform,
) -> None:
    result = platform.p3(bench_platform, 8)
    assert result["refresh_grants"] == 1
    assert result["rejected_refreshes"] == 0
    assert result["failed"] == 0 and result["succeeded"] == 8


def test_p4_reports_both_rates_or_skips_without_wrk(bench_platform: Platform) -> None:
    result = platform.p4(bench_platform, 1)
    if result is None:
        pytest.skip("wrk is not installed")
    assert result["ours_rps"] > 0 and result["bare_rps"] > 0


def test_r1_worker_killed_three_times_loses_nothing(bench_platform: Platform) -> None:
    result = chaos.r1(bench_platform, 12, chaos.FAST_ENV)
    assert result["lost"] == 0
    # `failed` counts the outcome_unknown runs too (it is their error code, not a status).
    assert result["succeeded"] + result["failed"] == 12
    assert result["outcome_unknown"] == result["failed"]
    assert result["duplicates"] == 0
    # A create cut off mid-call may be failed as outcome_unknown (honest), never anything else.
    assert set(result["failed_codes"]) <= {"outcome_unknown"}


def test_r2_flush_and_empty_restart_complete_every_run(bench_platform: Platform) -> None:
    # 90 s per wait, under the test's own timeout: a stall fails here with the counts (and
    # the process logs kept), not as a pytest-timeout. A worker whose main process died in
    # kombu's reconnect (worker/broker.py) used to stall R2' here about once in 20 runs.
    result = chaos.r2(bench_platform, 10, chaos.FAST_ENV, wait=90)
    assert result["flush_statuses"] == {"succeeded": 10}
    assert result["restart_accepted"] > 0
    assert result["lost"] == 0, result
    assert result["restart_statuses"] == {"succeeded": result["restart_accepted"]}, result


def test_r3_faults_are_retried_and_400s_fail_with_the_error_code(bench_platform: Platform) -> None:
    result = chaos.r3(bench_platform, 10, chaos.FAST_ENV, stall=2.0)
    assert sum(result["injected"].values()) >= 1
    assert result["get_statuses"] == {"succeeded": 10}
    assert result["lost"] == 0
    assert set(result["failed_codes"]) == {"bench-bad-query:INVALID_TYPE"}


def test_results_rows_go_into_the_table_not_after_the_prose():
    from bench.__main__ import TABLE_HEADER, with_rows

    text = f"# R\n\nintro\n\n{TABLE_HEADER}\n|---|\n| old |\n\n## Prose\n\nmore\n"
    assert with_rows(text, ["| new |"]) == (
        f"# R\n\nintro\n\n{TABLE_HEADER}\n|---|\n| old |\n| new |\n\n## Prose\n\nmore\n"
    )
    assert with_rows("# R\n", ["| new |"]).endswith(
        f"{TABLE_HEADER}\n|---|---|---|---|---|---|---|\n| new |\n"
    )
