"""The org's API quota: Sforce-Limit-Info parsing, usage per account, reserve, concurrency cap.

Salesforce reports usage on every REST response, in one of these forms:

    api-usage=25/5000
    api-usage=25/5000; per-app-api-usage=17/250(appName=x)
    api-usage=10018/100000; api-bursts=1/750

The account row keeps the latest org-wide figure (`api_usage_used/max/at`). Scheduled work
stops when usage passes the service's reserve (default: the last 10 %); triggered work may go
on to the hard limit.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, update

from ..models import Account, Service, utcnow
from .errors import RateLimited

if TYPE_CHECKING:
    import redis

    from ..runtime import Runtime

DEFAULT_CONCURRENCY_CAP = 10
# How long work that found the daily allocation spent waits before looking at /limits again.
QUOTA_RECHECK = timedelta(minutes=5)

_PAIR = re.compile(r"^\s*([a-z][a-z0-9-]*)\s*=\s*(\d+)\s*/\s*(\d+)\s*(?:\((.*)\))?\s*$", re.I)


@dataclass(frozen=True)
class LimitInfo:
    used: int
    max: int
    per_app: dict[str, tuple[int, int]] = field(default_factory=dict)
    bursts: tuple[int, int] | None = None

    @property
    def remaining(self) -> int:
        return max(0, self.max - self.used)

    @property
    def fraction(self) -> float:
        return self.used / self.max if self.max else 1.0


def parse_limit_info(header: str | None) -> LimitInfo | None:
    """Parse a Sforce-Limit-Info header; None when it carries no `api-usage`."""
    if not header:
        return None
    used = maximum = None
    per_app: dict[str, tuple[int, int]] = {}
    bursts = None
    for part in header.split(";"):
        match = _PAIR.match(part)
        if not match:
            continue
        name, extra = match.group(1).lower(), match.group(4)
        a, b = int(match.group(2)), int(match.group(3))
        if name == "api-usage":
            used, maximum = a, b
        elif name == "per-app-api-usage":
            app = ""
            if extra:
                app_match = re.search(r"appName=([^,)]*)", extra)
                app = app_match.group(1).strip() if app_match else extra.strip()
            per_app[app] = (a, b)
        elif name == "api-bursts":
            bursts = (a, b)
    if used is None or maximum is None:
        return None
    return LimitInfo(used=used, max=maximum, per_app=per_app, bursts=bursts)


def reserve_threshold(max_requests: int, reserve_percent: int) -> int:
    """The usage at which scheduled work stops (e.g. 90 000 of 100 000 with a 10 % reserve)."""
    reserve_percent = min(100, max(0, reserve_percent))
    return max_requests - (max_requests * reserve_percent) // 100


def reserve_reached(account: Account, service: Service) -> bool:
    """True when the account's recorded usage is at or past its service's reserve."""
    if account.quota_exhausted_until is not None and account.quota_exhausted_until > utcnow():
        return True
    if account.api_usage_used is None or not account.api_usage_max:
        return False
    return account.api_usage_used >= reserve_threshold(
        account.api_usage_max, service.api_reserve_percent
    )


def record_usage(
    runtime: Runtime, account_id: int, info: LimitInfo, *, at: datetime | None = None
) -> None:
    """Store the latest org-wide usage on the account (never older data over newer)."""
    at = at or utcnow()
    values: dict[str, Any] = dict(api_usage_used=info.used, api_usage_max=info.max, api_usage_at=at)
    if info.used < info.max:
        values["quota_exhausted_until"] = None
    with runtime.Session.begin() as session:
        session.execute(
            update(Account)
            .where(Account.id == account_id)
            .where(or_(Account.api_usage_at.is_(None), Account.api_usage_at <= at))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def record_exhausted(runtime: Runtime, account_id: int, *, until: datetime | None = None) -> None:
    """Remember that Salesforce said the daily allocation is spent, and when to look again."""
    until = until or utcnow() + QUOTA_RECHECK
    with runtime.Session.begin() as session:
        session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(quota_exhausted_until=until)
            .execution_options(synchronize_session=False)
        )


def check_room(runtime: Runtime, account_id: int, *, purpose: str = "trigger") -> bool:
    """Ask /limits (which costs no API call), record usage, and say whether work may go on.

    purpose="scheduled" needs usage below the service's reserve; "trigger" only needs room.
    """
    from .client import SalesforceClient

    client = SalesforceClient.for_account(runtime, account_id)
    daily = client.limits().get("DailyApiRequests") or {}
    maximum = int(daily.get("Max") or 0)
    remaining = int(daily.get("Remaining") or 0)
    info = LimitInfo(used=maximum - remaining, max=maximum)
    record_usage(runtime, account_id, info)
    if maximum <= 0 or remaining <= 0:
        record_exhausted(runtime, account_id)
        return False
    if purpose == "scheduled":
        return info.used < reserve_threshold(maximum, client.tokens.state().reserve_percent)
    return True


class ConcurrencyCap:
    """A per-account cap on in-flight requests across every worker process (Redis semaphore).

    Each holder is a member of a sorted set scored by its lease expiry, so a process killed
    mid-request frees its slot when the lease runs out instead of leaking it forever.
    """

    # Lease scores come from Redis's own clock (TIME), so hosts whose clocks disagree neither
    # free each other's live slots early nor keep dead ones.
    _ACQUIRE = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return 1
    end
    return 0
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        account_id: int,
        *,
        limit: int = DEFAULT_CONCURRENCY_CAP,
        lease_seconds: float = 120.0,
    ) -> None:
        self.redis = redis_client
        self.key = f"forcebot:sf:inflight:{account_id}"
        self.limit = limit
        self.lease_seconds = lease_seconds
        self._script = redis_client.register_script(self._ACQUIRE)

    def acquire(self, wait_seconds: float = 30.0) -> str:
        """Take a slot, waiting up to `wait_seconds`; RateLimited if none frees up."""
        member = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        delay = 0.01
        lease_ms = int(self.lease_seconds * 1000)
        while True:
            taken = self._script(keys=[self.key], args=[self.limit, member, lease_ms, lease_ms * 2])
            if taken:
                return member
            if time.monotonic() >= deadline:
                raise RateLimited(
                    f"more than {self.limit} requests in flight for this account",
                    error_code="concurrency_cap",
                    retry_after=1.0,
                )
            time.sleep(delay)
            delay = min(0.2, delay * 2)

    def release(self, member: str) -> None:
        self.redis.zrem(self.key, member)
