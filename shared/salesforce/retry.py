"""Back-off policy: exponential with full jitter, honouring Retry-After.

Only short waits happen in-process (`call_with_retries`); a wait longer than
`MAX_INLINE_WAIT_SECONDS` is raised to the caller, which stores it as the run's
`next_attempt_at` instead of holding a worker (or a broker countdown) for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .errors import SalesforceError

T = TypeVar("T")

MAX_INLINE_WAIT_SECONDS = 60.0


class _Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    retry_after: float | None = None,
    rng: _Uniform = random,  # type: ignore[assignment]
) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry).

    Full jitter (uniform between 0 and min(cap, base * 2**(attempt-1))) spreads retries of many
    workers apart; a server's Retry-After is a floor we never undercut (capped by `cap`).
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(cap, float(retry_after)))
    return delay


def call_with_retries(
    fn: Callable[[], T],
    *,
    max_attempts: int,
    sleep: Callable[[float], Any] = time.sleep,
    on_wait: Callable[[int, float, SalesforceError], Any] | None = None,
    base: float = 1.0,
    cap: float = 300.0,
    rng: _Uniform = random,  # type: ignore[assignment]
    max_inline_wait: float = MAX_INLINE_WAIT_SECONDS,
) -> T:
    """Call `fn`, retrying retryable `SalesforceError`s with back-off, at most `max_attempts` times.

    Non-retryable errors raise at once. A wait longer than `max_inline_wait` is not slept: the
    error is raised with `retry_after` set to that wait so the caller can schedule it.
    `on_wait(attempt, delay, error)` is called before each sleep (to record the wait).
    """
    attempt = 1
    while True:
        try:
            return fn()
        except SalesforceError as exc:
            if not exc.retryable or attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt, base=base, cap=cap, retry_after=exc.retry_after, rng=rng)
            if delay > max_inline_wait:
                exc.retry_after = delay
                raise
            if on_wait is not None:
                on_wait(attempt, delay, exc)
            sleep(delay)
            attempt += 1
