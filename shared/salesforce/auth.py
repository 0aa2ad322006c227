"""Token lifecycle: just-in-time and reactive refresh under a lock with a fencing check.

Any number of workers may find the same account's session expired at once. Each asks
`TokenManager.refresh(seen_version=...)`; the first takes a per-account Redis lock, re-reads the
row and refreshes; the others wait for the lock, re-read, see a newer `token_version` and use
that token. The write itself is a compare-and-swap on `token_version`
(`UPDATE ... WHERE token_version = :seen`), so a holder whose lock expired mid-refresh can
never overwrite a newer token. No database transaction is held across an HTTP call.

The lock is a lease, renewed to its full length before each step of the holder's work (the
grant, the introspection, the write), and each step's timeout is below the lease: a holder
that keeps working keeps the lock. Only a holder stalled past its lease (a paused or starved
process) loses it. Because such a holder may already have spent the refresh token on a
rotating grant, every holder also announces its grant in a per-account Redis set for
`lock_ttl + 2 * timeout`; a caller that gets `invalid_grant` waits until no other announced
grant is outstanding (or the row moved on) before it re-reads the row and, only if nothing
changed, marks the account `needs_reauth`. A holder stalled for longer than that window can
still lose its rotated token; then the account needs relinking, as before.

The refresh grant's body is built by oauthlib; we send it ourselves rather than through
`OAuth2Session.refresh_token`, whose https check can only be relaxed process-wide (we allow
plain http for loopback hosts only), and which copies the old refresh token into a response
without one (hiding whether Salesforce rotated it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests
from oauthlib.oauth2 import WebApplicationClient
from redis.exceptions import LockError
from sqlalchemy import update
from sqlalchemy.orm import joinedload

from ..accounts import token_update_values
from ..db import reading
from ..models import Account, Service, utcnow
from ..models.accounts import ACTIVE, NEEDS_REAUTH
from .errors import InvalidGrant, NeedsReauth, SalesforceError, TokenError, TransportError
from .http import OnExchange, require_secure, send

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)

# Margins are the most we refresh ahead; a short-lived token uses a share of its lifetime
# instead, or a 15-minute session (the shortest Salesforce allows) would be "expiring" from
# the moment it is issued and every call would refresh it.
JIT_MARGIN = timedelta(minutes=15)  # refresh before a call when less than this remains...
JIT_SHARE = 0.25  # ...or less than this share of the token's lifetime
DUE_MARGIN = timedelta(minutes=20)  # the beat task refreshes tokens expiring within this...
DUE_SHARE = 1 / 3  # ...or this share of the lifetime (ahead of the just-in-time check)
DAILY_REFRESH = timedelta(hours=24)  # ...and every account not refreshed for this long
GRANT_TIMEOUT_SECONDS = 20.0  # each HTTP call's timeout (the grant, the introspection)
# Renewed before each step; above the sum of both calls' timeouts and the write, so even an
# unrenewed lease outlives a holder that is slow but not stalled.
LOCK_TTL_SECONDS = 2 * GRANT_TIMEOUT_SECONDS + 20.0
LOCK_WAIT_SECONDS = 45.0


@dataclass(frozen=True)
class TokenState:
    """What a client needs from the account row, access token decrypted."""

    account_id: int
    version: int
    status: str
    status_reason: str | None
    access_token: str | None
    instance_url: str | None
    identity_url: str | None
    expires_at: datetime | None
    api_version: str
    reserve_percent: int
    api_usage_used: int | None
    api_usage_max: int | None
    quota_exhausted_until: datetime | None
    last_refresh_at: datetime | None
    token_issued_at: datetime | None

    @property
    def lifetime(self) -> timedelta | None:
        """How long the current token was issued for, if both ends are known."""
        if self.expires_at is None or self.token_issued_at is None:
            return None
        lifetime = _aware(self.expires_at) - _aware(self.token_issued_at)
        return lifetime if lifetime > timedelta(0) else None

    def margin(self, margin: timedelta, share: float = JIT_SHARE) -> timedelta:
        """`margin`, or `share` of the token's lifetime when that is smaller."""
        lifetime = self.lifetime
        return margin if lifetime is None else min(margin, lifetime * share)

    def expiring(
        self, margin: timedelta, now: datetime | None = None, *, share: float = JIT_SHARE
    ) -> bool:
        """Less than `self.margin(margin, share)` remains (always true without an expiry)."""
        if self.expires_at is None:
            return True
        return _aware(self.expires_at) - (now or utcnow()) < self.margin(margin, share)

    def due(self, now: datetime | None = None) -> bool:
        """Due for the beat task: near expiry, or not refreshed for a day."""
        return refresh_is_due(
            self.expires_at, self.token_issued_at, self.last_refresh_at, now or utcnow()
        )


def refresh_is_due(
    expires_at: datetime | None,
    issued_at: datetime | None,
    last_refresh_at: datetime | None,
    now: datetime,
) -> bool:
    """The beat's rule: expiring within min(DUE_MARGIN, DUE_SHARE of the token's lifetime),
    or not refreshed for DAILY_REFRESH (idle refresh tokens can expire)."""
    last = last_refresh_at or issued_at
    if expires_at is None or last is None or now - _aware(last) > DAILY_REFRESH:
        return True
    expires, margin = _aware(expires_at), DUE_MARGIN
    if issued_at is not None and expires > _aware(issued_at):
        margin = min(DUE_MARGIN, (expires - _aware(issued_at)) * DUE_SHARE)
    return expires - now < margin


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every one we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def _read_account(runtime: Runtime, account_id: int) -> Iterator[Account]:
    """The account with its service, in a short read-only session."""
    with reading(runtime.Session) as session:
        account = session.get(Account, account_id, options=[joinedload(Account.service)])
        if account is None:
            raise NeedsReauth(f"account {account_id} does not exist", error_code="not_found")
        yield account


# Per process and runtime: the last TokenState read of each account, for callers that already
# know the row's current `token_version` from a transaction of their own (a run's claim reads
# it). Every token change bumps the version (a refresh, a relink, needs_reauth); the age limit
# bounds what does not (the service's API version and reserve, the recorded usage).
STATE_CACHE_SECONDS = 30.0
_states: weakref.WeakKeyDictionary[Any, dict[int, tuple[TokenState, float]]] = (
    weakref.WeakKeyDictionary()
)
_states_lock = threading.Lock()


def cached_state(runtime: Runtime, account_id: int, version: int) -> TokenState | None:
    """The state last read of the account if its token_version is still `version`."""
    with _states_lock:
        entry = _states.get(runtime, {}).get(account_id)
    if entry is None:
        return None
    state, read_at = entry
    if state.version != version or time.monotonic() - read_at > STATE_CACHE_SECONDS:
        return None
    return state


def _remember(runtime: Runtime, state: TokenState) -> None:
    with _states_lock:
        _states.setdefault(runtime, {})[state.account_id] = (state, time.monotonic())


def load_state(runtime: Runtime, account_id: int) -> TokenState:
    """Read the account (short read-only transaction) and decrypt its access token."""
    state = _load_state(runtime, account_id)
    _remember(runtime, state)
    return state


def _load_state(runtime: Runtime, account_id: int) -> TokenState:
    with _read_account(runtime, account_id) as account:
        service = account.service
        return TokenState(
            account_id=account.id,
            version=account.token_version or 0,
            status=account.status,
            status_reason=account.status_reason,
            access_token=runtime.crypto.decrypt_optional(account.access_token_enc),
            instance_url=account.instance_url,
            identity_url=account.identity_url,
            expires_at=_aware(account.token_expires_at) if account.token_expires_at else None,
            api_version=service.api_version,
            reserve_percent=service.api_reserve_percent,
            api_usage_used=account.api_usage_used,
            api_usage_max=account.api_usage_max,
            quota_exhausted_until=(
                _aware(account.quota_exhausted_until) if account.quota_exhausted_until else None
            ),
            last_refresh_at=account.last_refresh_at,
            token_issued_at=(_aware(account.token_issued_at) if account.token_issued_at else None),
        )


@dataclass(frozen=True)
class _Credentials:
    version: int
    refresh_token: str | None
    client_id: str
    client_secret: str
    login_url: str
    use_introspection: bool
    service: Service


def _load_credentials(runtime: Runtime, account_id: int) -> _Credentials:
    # Closing the session detaches the service with its columns loaded, for store_refreshed.
    with _read_account(runtime, account_id) as account:
        service = account.service
        return _Credentials(
            version=account.token_version or 0,
            refresh_token=runtime.crypto.decrypt_optional(account.refresh_token_enc),
            client_id=service.client_id,
            client_secret=runtime.crypto.decrypt(service.client_secret_enc),
            login_url=service.login_url.rstrip("/"),
            use_introspection=bool(service.use_introspection),
            service=service,
        )


def refresh_grant(
    http: requests.Session,
    login_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    timeout: float = GRANT_TIMEOUT_SECONDS,
    on_exchange: OnExchange | None = None,
) -> dict[str, Any]:
    """POST the refresh_token grant; the token response, or TokenError / InvalidGrant."""
    token_url = login_url.rstrip("/") + "/services/oauth2/token"
    require_secure(token_url)
    body = WebApplicationClient(client_id).prepare_refresh_body(
        refresh_token=refresh_token,
        client_id=client_id,
        client_secret=client_secret,
        include_client_id=True,
    )
    response = send(
        http,
        "POST",
        token_url,
        timeout=timeout,
        on_exchange=on_exchange,
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    if response.status_code != 200:
        raise SalesforceError.from_response(response)
    try:
        token = response.json()
    except ValueError:
        token = None
    if not isinstance(token, dict) or not token.get("access_token"):
        raise TokenError("invalid_response", "the token endpoint returned no access_token")
    return token


def introspect_expiry(
    http: requests.Session,
    login_url: str,
    client_id: str,
    client_secret: str,
    access_token: str,
    *,
    timeout: float = GRANT_TIMEOUT_SECONDS,
    on_exchange: OnExchange | None = None,
) -> datetime | None:
    """The access token's `exp` from /services/oauth2/introspect, or None if it says nothing."""
    url = login_url.rstrip("/") + "/services/oauth2/introspect"
    require_secure(url)
    response = send(
        http,
        "POST",
        url,
        timeout=timeout,
        on_exchange=on_exchange,
        data={
            "token": access_token,
            "token_type_hint": "access_token",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        raise SalesforceError.from_response(response)
    try:
        data = response.json()
        if isinstance(data, dict) and data.get("active") and data.get("exp"):
            return datetime.fromtimestamp(int(data["exp"]), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        pass  # an odd answer only costs the sharper expiry, never the refreshed token
    return None


def store_refreshed(
    runtime: Runtime,
    account_id: int,
    token: dict[str, Any],
    service: Service,
    *,
    seen_version: int,
    expires_at: datetime | None = None,
) -> bool:
    """Compare-and-swap the new tokens onto the row; False if a newer token is already there."""
    values = token_update_values(token, runtime.crypto, service, expires_at=expires_at)
    values.update(
        token_version=Account.token_version + 1,
        last_refresh_at=utcnow(),
        refresh_count=Account.refresh_count + 1,
        last_refresh_error=None,
        consecutive_refresh_failures=0,
    )
    with runtime.Session.begin() as session:
        result = session.execute(
            update(Account)
            .where(Account.id == account_id, Account.token_version == seen_version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _record_failure(
    runtime: Runtime,
    account_id: int,
    message: str,
    *,
    needs_reauth_at_version: int | None = None,
) -> bool:
    """Record a failed refresh; with a version, also mark needs_reauth (compare-and-swap)."""
    values: dict[str, Any] = dict(
        last_refresh_error=message[:1000],
        consecutive_refresh_failures=Account.consecutive_refresh_failures + 1,
    )
    stmt = update(Account).where(Account.id == account_id)
    if needs_reauth_at_version is not None:
        stmt = stmt.where(Account.token_version == needs_reauth_at_version)
        values.update(
            status=NEEDS_REAUTH, status_reason=message, token_version=Account.token_version + 1
        )
    with runtime.Session.begin() as session:
        result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
        marked = bool(result.rowcount)  # type: ignore[attr-defined]
        if marked and needs_reauth_at_version is not None:
            from shared.webhooks import ACCOUNT_NEEDS_REAUTH, account_event

            account_event(session, ACCOUNT_NEEDS_REAUTH, account_id)  # same transaction
        return marked


class TokenManager:
    """The token of one account, refreshed at most once however many callers need it."""

    def __init__(
        self,
        runtime: Runtime,
        account_id: int,
        *,
        http: requests.Session | None = None,
        on_exchange: OnExchange | None = None,
        lock_ttl: float = LOCK_TTL_SECONDS,
        lock_wait: float = LOCK_WAIT_SECONDS,
        timeout: float = GRANT_TIMEOUT_SECONDS,
        known_version: int | None = None,
    ) -> None:
        self.runtime = runtime
        # The row's token_version as the caller just read it: the first state() may come from
        # this process's cache (`cached_state`) instead of the database.
        self.known_version = known_version
        self.account_id = account_id
        self.http = http or requests.Session()
        self.on_exchange = on_exchange
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.timeout = timeout
        self.refreshed = False  # did this manager perform a grant?
        self._state: TokenState | None = None

    @property
    def lock_name(self) -> str:
        return f"forcebot:sf:refresh-lock:{self.account_id}"

    @property
    def grants_name(self) -> str:
        """A sorted set of the grants in flight for this account: member -> Redis-time expiry."""
        return f"forcebot:sf:refresh-grants:{self.account_id}"

    @property
    def grant_window(self) -> float:
        """How long an announced grant counts as in flight (its holder may still be writing)."""
        return self.lock_ttl + 2 * self.timeout

    def state(self, *, reload: bool = False) -> TokenState:
        if self._state is None or reload:
            cached = None
            if not reload and self.known_version is not None:
                cached = cached_state(self.runtime, self.account_id, self.known_version)
            self._state = cached or load_state(self.runtime, self.account_id)
        return self._state

    def current(self, *, margin: timedelta = JIT_MARGIN) -> TokenState:
        """A usable token: NeedsReauth if the account needs relinking, refreshed if expiring."""
        state = self.state()
        if state.status == NEEDS_REAUTH:
            raise NeedsReauth(state.status_reason or "the account must be linked again")
        if state.access_token is None or state.expiring(margin):
            state = self.refresh(seen_version=state.version, margin=margin)
        return state

    def refresh(
        self,
        seen_version: int | None = None,
        *,
        force: bool = False,
        margin: timedelta = JIT_MARGIN,
    ) -> TokenState:
        """Refresh under the account's lock unless a sibling already did it.

        `seen_version` is the version whose token failed or is expiring: a newer row wins.
        Without it (and without `force`) the refresh happens only if the account is due.
        """
        lock = self.runtime.redis.lock(
            self.lock_name, timeout=self.lock_ttl, blocking_timeout=self.lock_wait
        )
        if not lock.acquire():
            state = self.state(reload=True)
            if seen_version is not None and state.version != seen_version:
                return state
            raise TransportError(
                "another process is still refreshing this account's token",
                error_code="refresh_lock_busy",
            )
        try:
            return self._refresh_locked(lock, seen_version, force=force, margin=margin)
        finally:
            try:
                lock.release()
            except LockError:
                # Our lease ran out mid-refresh; the fencing check already protected the row.
                log.warning("account=%s refresh_lock=expired", self.account_id)

    def _renew(self, lock: Any, step: str) -> bool:
        """Renew the lease to its full length before `step`; False if it was already lost."""
        try:
            lock.extend(self.lock_ttl, replace_ttl=True)
            return True
        except LockError:
            log.warning("account=%s refresh_lock=lost before=%s", self.account_id, step)
            return False

    def _redis_now(self) -> float:
        seconds, micros = self.runtime.redis.time()  # one clock for every host
        return float(seconds) + micros / 1e6

    def _announce_grant(self, member: str) -> None:
        redis = self.runtime.redis
        pipe = redis.pipeline()
        pipe.zadd(self.grants_name, {member: self._redis_now() + self.grant_window})
        pipe.expire(self.grants_name, int(self.grant_window) + 1)
        pipe.execute()

    def _withdraw_grant(self, member: str) -> None:
        try:
            self.runtime.redis.zrem(self.grants_name, member)
        except Exception:  # noqa: BLE001 - the entry expires by itself; never mask the outcome
            log.warning("account=%s refresh_grant=not_withdrawn", self.account_id)

    def _await_other_grants(self, lock: Any, member: str, version: int) -> None:
        """Wait while another announced grant may still store a rotated token (bounded)."""
        redis = self.runtime.redis
        deadline = time.monotonic() + self.grant_window
        while time.monotonic() < deadline:
            redis.zremrangebyscore(self.grants_name, "-inf", self._redis_now())
            others = [m for m in redis.zrange(self.grants_name, 0, -1) if _text(m) != member]
            if not others or self.state(reload=True).version != version:
                return
            log.info("account=%s invalid_grant=waiting_for_other_holder", self.account_id)
            self._renew(lock, "recheck")
            time.sleep(0.1)

    def _refresh_locked(
        self, lock: Any, seen_version: int | None, *, force: bool, margin: timedelta
    ) -> TokenState:
        state = self.state(reload=True)
        if state.status == NEEDS_REAUTH:
            raise NeedsReauth(state.status_reason or "the account must be linked again")
        if not force:
            if seen_version is not None:
                if state.version != seen_version and not state.expiring(margin):
                    return state
            elif not state.due():
                return state
        creds = _load_credentials(self.runtime, self.account_id)
        if not creds.refresh_token:
            return self._mark_needs_reauth(creds.version, "no refresh token is stored; link again")
        if not self._renew(lock, "grant"):
            # Another holder may be spending the same refresh token right now: don't race it.
            latest = self.state(reload=True)
            if seen_version is not None and latest.version != seen_version:
                return latest
            raise TransportError(
                "lost the refresh lock before the grant; try again",
                error_code="refresh_lock_busy",
            )
        member = uuid.uuid4().hex
        self._announce_grant(member)
        try:
            return self._grant_and_store(lock, creds, member)
        finally:
            self._withdraw_grant(member)

    def _grant_and_store(self, lock: Any, creds: _Credentials, member: str) -> TokenState:
        assert creds.refresh_token is not None
        try:
            token = refresh_grant(
                self.http,
                creds.login_url,
                creds.client_id,
                creds.client_secret,
                creds.refresh_token,
                timeout=self.timeout,
                on_exchange=self.on_exchange,
            )
        except InvalidGrant as exc:
            # A sibling whose lock lease ran out may have just rotated the refresh token, and
            # may still be writing it: wait for its grant to end before judging the row.
            self._await_other_grants(lock, member, creds.version)
            latest = self.state(reload=True)
            if latest.version != creds.version and latest.status == ACTIVE:
                return latest
            return self._mark_needs_reauth(creds.version, exc.error_description or exc.error)
        except SalesforceError as exc:
            _record_failure(self.runtime, self.account_id, str(exc))
            log.warning("account=%s refresh=failed code=%s", self.account_id, exc.error_code)
            raise
        expires_at = None
        if creds.use_introspection and self._renew(lock, "introspect"):
            # (A lost lease skips the sharper expiry; the session timeout still bounds it.)
            try:
                expires_at = introspect_expiry(
                    self.http,
                    creds.login_url,
                    creds.client_id,
                    creds.client_secret,
                    str(token["access_token"]),
                    timeout=self.timeout,
                    on_exchange=self.on_exchange,
                )
            except SalesforceError as exc:
                # The session timeout still gives a safe expiry; introspection only sharpens it.
                log.warning("account=%s introspect=failed code=%s", self.account_id, exc.error_code)
        self._renew(lock, "store")  # lost or not, the compare-and-swap decides
        stored = store_refreshed(
            self.runtime,
            self.account_id,
            token,
            creds.service,
            seen_version=creds.version,
            expires_at=expires_at,
        )
        if not stored:
            log.warning("account=%s refresh=discarded reason=newer_token", self.account_id)
            return self.state(reload=True)
        self.refreshed = True
        log.info("account=%s refresh=ok rotated=%s", self.account_id, "refresh_token" in token)
        return self.state(reload=True)

    def _mark_needs_reauth(self, version: int, reason: str) -> TokenState:
        """Mark the account needs_reauth and raise NeedsReauth, unless the row moved on."""
        marked = _record_failure(
            self.runtime, self.account_id, reason, needs_reauth_at_version=version
        )
        if not marked:
            # The row changed while we failed; if a sibling refreshed, its token is good.
            latest = self.state(reload=True)
            if latest.status == ACTIVE:
                return latest
        log.warning("account=%s status=needs_reauth", self.account_id)
        self._state = None
        raise NeedsReauth(reason, error_code="needs_reauth")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def refresh_account(
    runtime: Runtime,
    account_id: int,
    *,
    force: bool = True,
    http: requests.Session | None = None,
) -> bool:
    """Refresh now (force) or only if due (the beat task); True if this call refreshed."""
    manager = TokenManager(runtime, account_id, http=http)
    manager.refresh(force=force)
    return manager.refreshed
