"""The simulator's clock, API usage, counters, injected faults and request log.

``ClockAndCounters`` is a mixin of ``simulator.state.SimState``: it reads ``lock`` and
``settings`` and owns ``clock_offset``, ``api_usage``, ``counters``, ``faults`` and ``log``.
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

UTC = dt.UTC


@dataclass
class Fault:
    id: int
    prefix: str
    count: int = 1
    status: int | None = 503
    error_code: str = "SERVER_UNAVAILABLE"
    message: str = "Service temporarily unavailable"
    delay_seconds: float = 0.0
    retry_after: str | int | None = None
    html: bool = False
    host: str | None = None  # "login", "instance" or None for both
    # Matching requests let through before the fault fires: `after=2` on the queryMore prefix
    # (/services/data/vXX.X/query/) fails the third queryMore page, a mid-sync fault.
    after: int = 0


COUNTER_NAMES = (
    "code_grants",
    "refresh_grants",
    "rejected_refreshes",
    "rejected_codes",
    "api_calls",
    "peak_concurrency",
    "in_flight",
)


class ClockAndCounters:
    lock: threading.RLock
    settings: dict[str, Any]
    clock_offset: dt.timedelta
    api_usage: int
    counters: dict[str, int]
    faults: list[Fault]
    _fault_ids: itertools.count[int]
    log: collections.deque[dict[str, Any]]

    def now(self) -> dt.datetime:
        """The simulator's clock (real UTC time plus any offset), to the millisecond."""
        value = dt.datetime.now(UTC) + self.clock_offset
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    def advance_clock(self, seconds: float) -> dt.datetime:
        with self.lock:
            self.clock_offset += dt.timedelta(seconds=seconds)
            return self.now()

    # ------------------------------------------------------------ limits, counters, faults

    def count_api_call(self) -> bool:
        """Count one REST call; False (and nothing counted) when the allocation is spent."""
        with self.lock:
            if self.api_usage >= int(self.settings["api_max"]):
                return False
            self.api_usage += 1
            self.counters["api_calls"] += 1
            return True

    def limit_info(self) -> str:
        with self.lock:
            return f"api-usage={self.api_usage}/{self.settings['api_max']}"

    def enter_request(self) -> None:
        with self.lock:
            self.counters["in_flight"] += 1
            if self.counters["in_flight"] > self.counters["peak_concurrency"]:
                self.counters["peak_concurrency"] = self.counters["in_flight"]

    def leave_request(self) -> None:
        with self.lock:
            self.counters["in_flight"] -= 1

    def get_counters(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counters)

    def reset_counters(self) -> None:
        with self.lock:
            in_flight = self.counters["in_flight"]
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)
            self.counters["in_flight"] = in_flight

    def add_fault(self, prefix: str, **fields: Any) -> Fault:
        with self.lock:
            fault = Fault(id=next(self._fault_ids), prefix=prefix, **fields)
            self.faults.append(fault)
            return fault

    def take_fault(self, path: str, role: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count <= 0 or not path.startswith(fault.prefix):
                    continue
                if fault.host and fault.host != role:
                    continue
                if fault.after > 0:
                    fault.after -= 1  # this request passes (and is not offered to later faults)
                    return None
                fault.count -= 1
                taken = copy.copy(fault)
                self.faults = [f for f in self.faults if f.count > 0]
                return taken
            return None

    def list_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(f) for f in self.faults]

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = []

    def record_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)

    def get_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            entries = list(self.log)
        return entries[-limit:] if limit else entries

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()
