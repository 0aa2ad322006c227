"""The simulator's shared in-memory state: one lock guards everything.

Both Flask apps (login host and instance host) hold the same ``SimState``. Every public method
takes ``self.lock``; callers may also hold it (it is re-entrant) to group several steps.

``SimState`` is put together from one mixin per concern, each in its own module:
``oauth_store.OAuthStore`` (apps, users, codes, tokens), ``ops.ClockAndCounters`` (clock, API
usage, counters, faults, request log), ``records.RecordStore`` (storage and typing) and
``queries.QueryEngine`` (SOQL, locators, replication windows). This module owns the lifecycle
(``reset``) and the settings, and re-exports the names other modules import from it.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import threading
from typing import Any
from zoneinfo import ZoneInfo

from simulator import schema
from simulator.errors import OAuthError, SfError
from simulator.ids import IdGenerator
from simulator.oauth_store import (
    AccessToken,
    AuthCode,
    ConnectedApp,
    OAuthStore,
    RefreshToken,
    User,
)
from simulator.ops import COUNTER_NAMES, ClockAndCounters, Fault
from simulator.queries import QueryEngine
from simulator.records import LATEST_API_VERSION
from simulator.values import UTC, fingerprint, fmt_dt

__all__ = [
    "API_VERSIONS",
    "LATEST_API_VERSION",
    "UTC",
    "AccessToken",
    "AuthCode",
    "ConnectedApp",
    "Fault",
    "OAuthError",
    "RefreshToken",
    "SfError",
    "SimState",
    "User",
    "fingerprint",
    "fmt_dt",
]

DEFAULT_ORG_NAME = "Acme Simulated Org"
DEFAULT_USERNAME = "admin@acme.sim"
API_VERSIONS = [f"{v}.0" for v in range(31, 64)]

DEFAULT_SETTINGS: dict[str, Any] = {
    "rotate_refresh_tokens": False,
    "session_timeout_seconds": 7200,
    "code_lifetime_seconds": 900,
    "api_max": 100000,
    "default_batch_size": 2000,
    "bulk_polls_in_progress": 1,  # simulator.bulk: polls that answer InProgress
    "bulk_page_records": 0,  # simulator.bulk: cap on records per results page (0: none)
    "log_limit": 20000,
    # IANA zone of the simulated org: date literals (TODAY, THIS_MONTH, ...) are read in it.
    "org_time_zone": "Europe/London",
    # False: any X__c name is accepted (and remembered) on write and in SOQL. True: only the
    # custom fields defined through POST /_sim/objects/<obj>/fields exist.
    "strict_custom_fields": False,
}


class SimState(OAuthStore, ClockAndCounters, QueryEngine):
    def __init__(self, org_name: str = DEFAULT_ORG_NAME) -> None:
        self.lock = threading.RLock()
        self.login_url: str | None = None
        self.instance_url: str | None = None
        self.org_name = org_name
        self._reset_locked()

    # ------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget everything (apps, tokens, records, faults, log, counters, settings)."""
        with self.lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self.ids = IdGenerator()
        self.org_id = self.ids.new("00D")
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.api_usage = 0
        self.clock_offset = dt.timedelta(0)
        self.users: dict[str, User] = {}
        self.apps: dict[str, ConnectedApp] = {}
        self.codes: dict[str, AuthCode] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in schema.OBJECTS}
        self.custom_fields: dict[str, set[str]] = {o: set() for o in schema.OBJECTS}
        self.custom_field_defs: dict[str, dict[str, dict[str, Any]]] = {
            o: {} for o in schema.OBJECTS
        }
        self.locators: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self._case_numbers = itertools.count(1001)
        self.log: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=int(self.settings["log_limit"])
        )
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.default_user = self.add_user(DEFAULT_USERNAME, "Admin", "User")

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        with self.lock:
            for key, value in changes.items():
                if key == "api_usage":
                    self.api_usage = int(value)
                    continue
                if key not in self.settings:
                    raise KeyError(key)
                if key == "org_time_zone":
                    ZoneInfo(str(value))  # an unknown zone raises (a KeyError) here, not later
                self.settings[key] = value
            return self.get_settings()

    def get_settings(self) -> dict[str, Any]:
        with self.lock:
            return {**self.settings, "api_usage": self.api_usage}
