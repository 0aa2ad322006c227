"""The back-off policy and the in-process retry helper (pure: no network, no sleeping)."""

from __future__ import annotations

import random

import pytest

from shared.salesforce.errors import MalformedQuery, RateLimited, ServerError
from shared.salesforce.retry import backoff_delay, call_with_retries


class Fixed:
    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


def test_backoff_is_exponential_with_full_jitter_and_a_cap():
    assert [backoff_delay(n, rng=Fixed(1.0)) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(20, rng=Fixed(1.0), cap=300) == 300
    assert backoff_delay(3, rng=Fixed(0.0)) == 0.0
    rng = random.Random(7)
    delays = [backoff_delay(5, base=1.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 16 for d in delays) and len(set(delays)) > 150  # spread out


def test_retry_after_is_a_floor_within_the_cap():
    assert backoff_delay(1, retry_after=2, rng=Fixed(0.0)) == 2
    assert backoff_delay(6, retry_after=2, rng=Fixed(1.0)) == 32  # jitter above it is fine
    assert backoff_delay(1, retry_after=1000, cap=300, rng=Fixed(0.0)) == 300


def test_retries_retryable_errors_then_succeeds():
    outcomes = [ServerError("down", status=503), RateLimited("busy", status=429), "ok"]
    waits: list[tuple[int, float]] = []
    slept: list[float] = []

    def fn() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    result = call_with_retries(
        fn,
        max_attempts=5,
        sleep=slept.append,
        on_wait=lambda attempt, delay, exc: waits.append((attempt, delay)),
        rng=Fixed(1.0),
    )
    assert result == "ok"
    assert waits == [(1, 1.0), (2, 2.0)] and slept == [1.0, 2.0]


def test_gives_up_after_max_attempts_and_never_retries_4xx():
    calls = []

    def busy() -> None:
        calls.append(1)
        raise RateLimited("busy", status=429)

    with pytest.raises(RateLimited):
        call_with_retries(busy, max_attempts=3, sleep=lambda s: None)
    assert len(calls) == 3

    calls.clear()

    def bad() -> None:
        calls.append(1)
        raise MalformedQuery("unexpected token", status=400)

    with pytest.raises(MalformedQuery):
        call_with_retries(bad, max_attempts=3, sleep=lambda s: pytest.fail("slept"))
    assert len(calls) == 1


def test_long_waits_are_raised_to_the_caller_not_slept():
    def slow() -> None:
        raise RateLimited("busy", status=429, retry_after=120)

    with pytest.raises(RateLimited) as info:
        call_with_retries(slow, max_attempts=5, sleep=lambda s: pytest.fail("slept"))
    assert info.value.retry_after == 120
