"""The beat schedule: short, idempotent ticks; the real timetables live in our tables."""

from __future__ import annotations

from typing import Any

# Each entry is a dispatcher that looks at the database and is safe to run from two beats at
# once: the work it finds is claimed with a compare-and-swap, never by trusting the tick.
BEAT_TASKS: dict[str, tuple[str, float]] = {}


def register(name: str, task: str, every_seconds: float) -> None:
    BEAT_TASKS[name] = (task, every_seconds)


# Beat's ticks go to a queue of their own, so a pool saturated with long runs cannot delay
# them past their expiry: `forcebot worker` consumes both queues by default, and a worker
# started with `--queues forcebot.beat` (docker-compose's `beat-worker`) is always free for them.
BEAT_QUEUE = "forcebot.beat"


def beat_schedule() -> dict[str, Any]:
    return {
        name: {
            "task": task,
            "schedule": every,
            "options": {"expires": max(every * 2, 10), "queue": BEAT_QUEUE},
        }
        for name, (task, every) in BEAT_TASKS.items()
    }
