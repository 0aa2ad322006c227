"""A Salesforce REST client bound to one connected account.

Every call: refuses if the account needs relinking, refreshes just in time when less than 15
minutes remain, attaches the token only for the account's own hosts, takes a slot of the
account's cross-worker concurrency cap, records `Sforce-Limit-Info` (debounced), and on
`401 INVALID_SESSION_ID` refreshes once and replays. Errors are raised as the tree in
`errors.py`; retrying is the caller's decision (see `retry.py`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from ..models import utcnow
from .auth import JIT_MARGIN, TokenManager, TokenState
from .errors import (
    DailyLimitExceeded,
    HostNotAllowed,
    InvalidSession,
    QuotaReserveReached,
    SalesforceError,
)
from .http import OnExchange, require_secure, send
from .limits import (
    DEFAULT_CONCURRENCY_CAP,
    ConcurrencyCap,
    LimitInfo,
    parse_limit_info,
    record_exhausted,
    record_usage,
    reserve_threshold,
)

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("forcebot.salesforce")

TRIGGER = "trigger"
SCHEDULED = "scheduled"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


# The usage last written to each account's row, and when (monotonic): per process and runtime,
# because a client lives for one run and every run of a busy worker sees a new figure.
_usage_written: weakref.WeakKeyDictionary[Any, dict[int, tuple[LimitInfo, float]]] = (
    weakref.WeakKeyDictionary()
)
_usage_lock = threading.Lock()


class SalesforceClient:
    """REST calls as one connected account; build it with `for_account`."""

    # A transaction per API call would cost more than the call itself, so this process writes
    # the usage its clients see to the account row at most this often per account, and at
    # once when it crosses the reserve line (scheduled work in other processes reads the row).
    usage_write_seconds = 5.0

    def __init__(
        self,
        runtime: Runtime,
        account_id: int,
        *,
        on_exchange: OnExchange | None = None,
        timeout: float = 30.0,
        http: requests.Session | None = None,
        purpose: str = TRIGGER,
        concurrency_cap: int = DEFAULT_CONCURRENCY_CAP,
        token_version: int | None = None,
    ) -> None:
        """`token_version`: the account row's version as the caller just read it, so that the
        token may come from this process's cache (ignored for scheduled work, whose reserve
        check wants the row's latest usage)."""
        self.runtime = runtime
        self.account_id = account_id
        self.on_exchange = on_exchange
        self.timeout = timeout
        self.http = http or requests.Session()
        self.purpose = purpose
        self.tokens = TokenManager(
            runtime,
            account_id,
            http=self.http,
            on_exchange=on_exchange,
            known_version=None if purpose == SCHEDULED else token_version,
        )
        self.cap = ConcurrencyCap(
            runtime.redis, account_id, limit=concurrency_cap, lease_seconds=timeout * 2 + 10
        )
        self._usage: LimitInfo | None = None
        self.api_version = self.tokens.state().api_version

    @classmethod
    def for_account(cls, runtime: Runtime, account_id: int, **options: Any) -> SalesforceClient:
        """A client for the account (NeedsReauth on first call if it must be relinked).

        `options` are the constructor's keywords (on_exchange, timeout, http, purpose, ...).
        """
        return cls(runtime, account_id, **options)

    # ------------------------------------------------------------------ state

    @property
    def instance_url(self) -> str | None:
        return self.tokens.state().instance_url

    @property
    def refreshed(self) -> bool:
        """True if this client performed a refresh grant."""
        return self.tokens.refreshed

    @property
    def usage(self) -> LimitInfo | None:
        """The latest Sforce-Limit-Info this client saw."""
        return self._usage

    @property
    def base_path(self) -> str:
        return f"/services/data/v{self.api_version}"

    def _check_reserve(self, state: TokenState) -> None:
        if self.purpose != SCHEDULED:
            return
        if state.quota_exhausted_until is not None and state.quota_exhausted_until > utcnow():
            raise QuotaReserveReached("the org's daily API allocation is spent")
        used, maximum = (
            (self._usage.used, self._usage.max)
            if self._usage is not None
            else (state.api_usage_used, state.api_usage_max)
        )
        if used is None or not maximum:
            return
        threshold = reserve_threshold(maximum, state.reserve_percent)
        if used >= threshold:
            raise QuotaReserveReached(
                f"API usage {used}/{maximum} is past the reserve "
                f"({state.reserve_percent}% kept for triggered work)"
            )

    def _resolve(self, url: str, state: TokenState) -> str:
        """Absolute URL for `url`; HostNotAllowed for a host that is not the account's."""
        instance = state.instance_url
        if not instance:
            raise HostNotAllowed("the account has no instance URL; link it again")
        parts = urlsplit(url)
        if not parts.scheme and not parts.netloc:
            path = url if url.startswith("/") else "/" + url
            return urljoin(instance.rstrip("/") + "/", path.lstrip("/"))
        origin = _origin(url)
        allowed = {_origin(instance), _origin(state.identity_url)} - {None}
        if origin not in allowed:
            raise HostNotAllowed(
                f"{parts.hostname} is not this account's Salesforce host; "
                "the token is only sent to its instance and identity URLs"
            )
        return url

    # ------------------------------------------------------------------ raw request

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        raise_for_status: bool = True,
    ) -> requests.Response:
        """Send one request as the account (relative URLs resolve on its instance_url).

        With raise_for_status=False a non-retryable 4xx comes back as the response; retryable
        errors (and NeedsReauth, HostNotAllowed, QuotaReserveReached) always raise.
        """
        state = self.tokens.current(margin=JIT_MARGIN)
        self._check_reserve(state)
        target = self._resolve(url, state)
        require_secure(target)
        response = self._send(method, target, state, params, json, data, headers)
        if response.status_code == 401:
            # The session ended early (timeout, revoked, password change): refresh once, replay.
            state = self.tokens.refresh(seen_version=state.version)
            target = self._resolve(url, state)
            response = self._send(method, target, state, params, json, data, headers)
        if response.status_code < 400:
            return response
        error = SalesforceError.from_response(response)
        if isinstance(error, DailyLimitExceeded):
            record_exhausted(self.runtime, self.account_id)
        if error.retryable or raise_for_status or isinstance(error, InvalidSession):
            raise error
        return response

    def _send(
        self,
        method: str,
        url: str,
        state: TokenState,
        params: Any,
        json: Any,
        data: Any,
        headers: dict[str, str] | None,
    ) -> requests.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        all_headers["Authorization"] = f"Bearer {state.access_token}"
        slot = self.cap.acquire(wait_seconds=self.timeout)
        try:
            response = send(
                self.http,
                method,
                url,
                timeout=self.timeout,
                on_exchange=self.on_exchange,
                params=params,
                json=json,
                data=data,
                headers=all_headers,
            )
        finally:
            try:
                self.cap.release(slot)
            except RedisError:  # the slot's lease frees it; the response must not be lost
                log.warning("account=%s concurrency slot not released", self.account_id)
        info = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if info is not None:
            self._usage = info
            if self._usage_write_due(info, state):
                try:
                    record_usage(self.runtime, self.account_id, info)
                    with _usage_lock:
                        written = _usage_written.setdefault(self.runtime, {})
                        written[self.account_id] = (info, time.monotonic())
                except (OperationalError, RedisError):  # bookkeeping; the next call writes it
                    log.warning("account=%s API usage not recorded", self.account_id)
        return response

    def _usage_write_due(self, info: LimitInfo, state: TokenState) -> bool:
        """First figure, `usage_write_seconds` since the last write, or the reserve line crossed."""
        with _usage_lock:
            entry = _usage_written.get(self.runtime, {}).get(self.account_id)
        if entry is None:
            return True
        last, written_at = entry
        if time.monotonic() - written_at >= self.usage_write_seconds:
            return True
        line = reserve_threshold(info.max, state.reserve_percent)
        return info.max != last.max or (info.used >= line) != (last.used >= line)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------------ queries

    def query_page(
        self,
        soql: str | None = None,
        *,
        next_url: str | None = None,
        include_deleted: bool = False,
        batch_size: int | None = None,
    ) -> dict[str, Any]:
        """One raw page: the first for `soql`, or the one at `next_url` (nextRecordsUrl)."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        if next_url:
            return dict(self._json("GET", next_url, headers=headers))
        if not soql:
            raise ValueError("query_page needs soql or next_url")
        resource = "queryAll" if include_deleted else "query"
        return dict(
            self._json("GET", f"{self.base_path}/{resource}", params={"q": soql}, headers=headers)
        )

    def _iterate(
        self, soql: str, *, include_deleted: bool, batch_size: int | None
    ) -> Iterator[dict[str, Any]]:
        page = self.query_page(soql, include_deleted=include_deleted, batch_size=batch_size)
        while True:
            yield from page.get("records") or []
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self.query_page(next_url=next_url, batch_size=batch_size)

    def query(self, soql: str, *, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every record of `soql`, lazily, following nextRecordsUrl."""
        return self._iterate(soql, include_deleted=False, batch_size=batch_size)

    def query_all(self, soql: str, *, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Like `query`, through queryAll (deleted and archived records included)."""
        return self._iterate(soql, include_deleted=True, batch_size=batch_size)

    def query_result(
        self, soql: str, *, include_deleted: bool = False, limit: int | None = None
    ) -> dict[str, Any]:
        """All pages as {"totalSize", "done", "records"}, keeping at most `limit` records."""
        first = self.query_page(soql, include_deleted=include_deleted)
        records: list[dict[str, Any]] = list(first.get("records") or [])
        page = first
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            if limit is not None and len(records) >= limit:
                break
            page = self.query_page(next_url=page["nextRecordsUrl"])
            records.extend(page.get("records") or [])
        done = bool(page.get("done", True))
        if limit is not None and len(records) > limit:
            records, done = records[:limit], False
        return {"totalSize": first.get("totalSize", len(records)), "done": done, "records": records}

    # ------------------------------------------------------------------ records

    def _sobject_path(self, sobject: str, *parts: str) -> str:
        tail = "/".join(quote(str(p), safe="") for p in (sobject, *parts))
        return f"{self.base_path}/sobjects/{tail}"

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None) -> dict[str, Any]:
        params = {"fields": ",".join(fields)} if fields else None
        return dict(self._json("GET", self._sobject_path(sobject, record_id), params=params))

    def get_by_external_id(
        self, sobject: str, field: str, value: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        """GET /sobjects/<obj>/<field>/<value> (value URL-encoded); 404 when none matches."""
        params = {"fields": ",".join(fields)} if fields else None
        return dict(self._json("GET", self._sobject_path(sobject, field, value), params=params))

    def create(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        result = dict(self._json("POST", self._sobject_path(sobject), json=fields))
        return {
            "id": result.get("id"),
            "success": result.get("success", True),
            "errors": result.get("errors", []),
        }

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        self.request("PATCH", self._sobject_path(sobject, record_id), json=fields)

    def upsert(
        self, sobject: str, external_id_field: str, value: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        response = self.request(
            "PATCH", self._sobject_path(sobject, external_id_field, value), json=fields
        )
        body = response.json() if response.content else {}
        return {
            "id": body.get("id"),
            "success": body.get("success", True),
            "errors": body.get("errors", []),
            "created": bool(body.get("created", response.status_code == 201)),
        }

    def delete(self, sobject: str, record_id: str) -> None:
        self.request("DELETE", self._sobject_path(sobject, record_id))

    def composite(
        self, records: list[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """Create up to 200 records in one call (each needs attributes.type)."""
        body = {"allOrNone": all_or_none, "records": records}
        return list(self._json("POST", f"{self.base_path}/composite/sobjects", json=body))

    def composite_update(
        self, records: list[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """Update up to 200 records in one call (each needs attributes.type and id)."""
        body = {"allOrNone": all_or_none, "records": records}
        return list(self._json("PATCH", f"{self.base_path}/composite/sobjects", json=body))

    def composite_delete(
        self, ids: list[str], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """Delete up to 200 records in one call."""
        params = {"ids": ",".join(ids), "allOrNone": "true" if all_or_none else "false"}
        return list(self._json("DELETE", f"{self.base_path}/composite/sobjects", params=params))

    def limits(self) -> dict[str, Any]:
        return dict(self._json("GET", f"{self.base_path}/limits"))
