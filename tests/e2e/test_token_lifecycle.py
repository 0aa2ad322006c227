"""Token lifecycle end to end: simulator over HTTP, real Redis, real worker processes."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from typing import Any

import redis
import requests

from shared.accounts import apply_token_response
from shared.models import Account, Service, utcnow
from shared.salesforce import NeedsReauth, SalesforceClient
from shared.salesforce.auth import TokenManager, refresh_account, store_refreshed
from tests.conftest import poll, sim_token_response
from tests.shared.salesforce.support import account_row
from worker.celery_app import celery, use_broker


def fan_out_checks(settings: Any, account_id: int, n: int) -> list[dict]:
    """Queue `n` check_connection tasks and wait for every outcome."""
    use_broker(settings.redis_url)
    ids = [uuid.uuid4().hex for _ in range(n)]
    for request_id in ids:
        celery.send_task("worker.accounts.check_connection", args=[account_id, request_id])
    client = redis.Redis.from_url(settings.redis_url)
    try:

        def outcomes() -> list[dict] | None:
            values = client.mget([f"forcebot:check:{i}" for i in ids])
            return None if None in values else [json.loads(v) for v in values]

        return poll(outcomes, timeout=60, message=f"{n} check_connection outcomes")
    finally:
        client.close()


def wait_for_workers(settings: Any, account_id: int, count: int) -> None:
    """Wait until `count` worker processes consume (a new worker's readiness ping may have been
    answered by an older one, so probe with real tasks until enough distinct workers reply)."""
    seen: set[str] = set()

    def enough() -> bool:
        seen.update(r["worker"] for r in fan_out_checks(settings, account_id, 8))
        return len(seen) >= count

    poll(enough, timeout=60, interval=0.2, message=f"{count} consuming workers")


def test_fifty_concurrent_calls_on_expired_session_cause_one_refresh(
    sim, settings, runtime, linked_account, worker, worker_factory
):
    account_id = linked_account()
    worker_factory(concurrency=8, name="burst")
    wait_for_workers(settings, account_id, 2)
    before = account_row(runtime, account_id)
    sim.control.set_rotation(True)
    sim.control.expire_sessions()
    sim.control.reset_counters()

    results = fan_out_checks(settings, account_id, 50)

    failed = [r for r in results if not r["ok"]]
    assert failed == []
    counters = sim.control.counters()
    assert counters["refresh_grants"] == 1
    assert counters["rejected_refreshes"] == 0
    assert sum(r["refreshed"] for r in results) == 1
    assert len({r["worker"] for r in results}) >= 2, "both worker processes took part"
    after = account_row(runtime, account_id)
    assert after.token_version == before.token_version + 1
    assert after.refresh_token_enc != before.refresh_token_enc  # the rotated one was stored
    assert after.refresh_count == 1 and after.status == "active"


def test_token_ten_minutes_from_expiry_is_refreshed_before_use(sim, runtime, linked_account):
    account_id = linked_account()
    with runtime.Session.begin() as session:
        account = session.get(Account, account_id)  # a 2-hour token with 10 minutes left
        account.token_issued_at = utcnow() - timedelta(minutes=110)
        account.token_expires_at = utcnow() + timedelta(minutes=10)
    before = account_row(runtime, account_id)
    sim.control.clear_log()

    client = SalesforceClient.for_account(runtime, account_id)
    assert client.limits()["DailyApiRequests"]["Max"] > 0

    log = sim.control.log()
    assert [e["status"] for e in log if e["status"] == 401] == []
    assert [e["path"] for e in log] == [
        "/services/oauth2/token",
        f"/services/data/v{client.api_version}/limits",
    ]
    after = account_row(runtime, account_id)
    assert client.refreshed and after.token_version == before.token_version + 1
    assert after.token_expires_at.replace(tzinfo=None) > (
        utcnow() + timedelta(minutes=100)
    ).replace(tzinfo=None)
    # Rotation is off: no refresh_token came back and the stored one was kept.
    assert runtime.crypto.decrypt(after.refresh_token_enc) == runtime.crypto.decrypt(
        before.refresh_token_enc
    )
    assert after.instance_url == sim.instance_url and after.identity_url == before.identity_url
    assert after.token_issued_at > before.token_issued_at


def test_401_refreshes_once_and_replays(sim, runtime, linked_account):
    account_id = linked_account()
    client = SalesforceClient.for_account(runtime, account_id)
    sim.control.set_rotation(True)
    sim.control.expire_sessions()
    sim.control.clear_log()
    sim.control.reset_counters()

    client.limits()

    assert [(e["path"].rsplit("/", 1)[-1], e["status"]) for e in sim.control.log()] == [
        ("limits", 401),
        ("token", 200),
        ("limits", 200),
    ]
    assert sim.control.counters()["refresh_grants"] == 1
    # The rotated refresh token works for the next refresh.
    sim.control.expire_sessions()
    client.limits()
    assert sim.control.counters()["refresh_grants"] == 2
    assert sim.control.counters()["rejected_refreshes"] == 0


def test_revoked_refresh_token_needs_reauth_then_relink_makes_it_active(
    sim, settings, runtime, linked_account, worker
):
    account_id = linked_account()
    sim.control.revoke_refresh_tokens()
    sim.control.expire_sessions()

    [outcome] = fan_out_checks(settings, account_id, 1)

    assert outcome["ok"] is False
    assert outcome["error"]["code"] == "needs_reauth"
    account = account_row(runtime, account_id)
    assert account.status == "needs_reauth"
    assert account.status_reason == "expired access/refresh token"  # Salesforce's words
    assert account.consecutive_refresh_failures == 1
    assert account.last_refresh_error == "expired access/refresh token"
    # Runs that need the account fail with that reason, without calling Salesforce.
    sim.control.clear_log()
    try:
        SalesforceClient.for_account(runtime, account_id).limits()
    except NeedsReauth as exc:
        assert exc.message == "expired access/refresh token" and not exc.retryable
    else:
        raise AssertionError("NeedsReauth expected")
    assert sim.control.log() == []

    # Relink: a new token response makes the account active again.
    token = sim_token_response(sim, settings.oauth_callback_url)
    with runtime.Session.begin() as session:
        account = session.get(Account, account_id)
        apply_token_response(account, token, runtime.crypto, account.service)
    [outcome] = fan_out_checks(settings, account_id, 1)
    assert outcome["ok"] is True
    assert account_row(runtime, account_id).status == "active"


def test_stale_token_version_write_is_refused(sim, runtime, linked_account):
    account_id = linked_account()
    seen = account_row(runtime, account_id).token_version
    TokenManager(runtime, account_id).refresh(force=True)
    newer = account_row(runtime, account_id)
    assert newer.token_version == seen + 1

    with runtime.Session() as session:
        service = session.get(Service, newer.service_id)
        session.expunge(service)
    stale = {"access_token": "00Dstale!token", "instance_url": sim.instance_url}
    assert store_refreshed(runtime, account_id, stale, service, seen_version=seen) is False
    kept = account_row(runtime, account_id)
    assert kept.access_token_enc == newer.access_token_enc
    assert kept.token_version == newer.token_version


class StallingSession(requests.Session):
    """A transport that holds the token request until released (a process paused mid-refresh)."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if url.endswith("/services/oauth2/token"):
            self.reached.set()
            assert self.release.wait(20)
        return super().request(method, url, *args, **kwargs)


def _stalled_refresh(
    runtime: Any, account_id: int
) -> tuple[StallingSession, dict, threading.Thread]:
    """Start a refresh whose lock (0.3 s) expires while its grant is stalled."""
    http = StallingSession()
    slow = TokenManager(runtime, account_id, http=http, lock_ttl=0.3)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["state"] = slow.refresh(force=True)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc
        outcome["refreshed"] = slow.refreshed

    thread = threading.Thread(target=run)
    thread.start()
    assert http.reached.wait(10)
    poll(
        lambda: not runtime.redis.exists(slow.lock_name),
        timeout=5,
        message="the stalled holder's lock to expire",
    )
    return http, outcome, thread


def test_lock_expired_mid_refresh_cannot_overwrite_newer_token(sim, runtime, linked_account):
    account_id = linked_account()
    before = account_row(runtime, account_id)
    http, outcome, thread = _stalled_refresh(runtime, account_id)

    # A sibling takes the now-free lock and refreshes first.
    sibling = TokenManager(runtime, account_id)
    sibling.refresh(force=True)
    assert sibling.refreshed
    newer = account_row(runtime, account_id)

    http.release.set()
    thread.join(20)
    assert "error" not in outcome
    assert outcome["refreshed"] is False  # its token was discarded by the fencing check
    final = account_row(runtime, account_id)
    assert final.access_token_enc == newer.access_token_enc
    assert final.token_version == before.token_version + 1
    assert outcome["state"].access_token == runtime.crypto.decrypt(newer.access_token_enc)
    assert sim.control.counters()["refresh_grants"] == 2


def test_invalid_grant_after_sibling_rotated_rereads_instead_of_needs_reauth(
    sim, runtime, linked_account
):
    account_id = linked_account()
    sim.control.set_rotation(True)
    sim.control.reset_counters()
    http, outcome, thread = _stalled_refresh(runtime, account_id)

    sibling = TokenManager(runtime, account_id)
    sibling.refresh(force=True)  # rotates: the stalled holder's refresh token is now revoked
    http.release.set()
    thread.join(20)

    assert "error" not in outcome
    counters = sim.control.counters()
    assert counters["refresh_grants"] == 1 and counters["rejected_refreshes"] == 1
    account = account_row(runtime, account_id)
    assert account.status == "active"
    assert outcome["state"].access_token == runtime.crypto.decrypt(account.access_token_enc)
    # And the stored (rotated) token keeps working.
    sim.control.expire_sessions()
    assert SalesforceClient.for_account(runtime, account_id).limits()


def test_fifteen_minute_session_over_100_calls_makes_one_grant(sim, runtime, linked_account):
    account_id = linked_account(service_name="short-sessions", session_timeout_minutes=15)
    # The linked token has one minute of its fifteen left: the first call must refresh it.
    with runtime.Session.begin() as session:
        account = session.get(Account, account_id)
        account.token_issued_at = utcnow() - timedelta(minutes=14)
        account.token_expires_at = utcnow() + timedelta(minutes=1)
    sim.control.reset_counters()

    for _ in range(100):  # a new client per call, as separate runs would
        SalesforceClient.for_account(runtime, account_id).limits()
    # The beat's check under the lock finds the fresh 15-minute token not due either.
    assert refresh_account(runtime, account_id, force=False) is False

    assert sim.control.counters()["refresh_grants"] == 1
    after = account_row(runtime, account_id)
    assert after.refresh_count == 1
    lifetime = after.token_expires_at - after.token_issued_at
    assert lifetime == timedelta(minutes=15)


def _concurrent_refreshes(runtime: Any, account_id: int, n: int, **manager: Any) -> list[Any]:
    """`n` callers that all saw the current version fail, each in its own thread."""
    seen = account_row(runtime, account_id).token_version
    outcomes: list[Any] = [None] * n

    def call(index: int) -> None:
        try:
            outcomes[index] = TokenManager(runtime, account_id, **manager).refresh(
                seen_version=seen
            )
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_grant_and_introspection_slower_than_the_lease_keep_the_rotated_token(
    sim, runtime, linked_account
):
    # Each call takes 3 s and the lease is 5 s: together they outlast one lease, so only a
    # holder that renews its lease before each call keeps the lock until it has stored.
    account_id = linked_account(use_introspection=True)
    sim.control.set_rotation(True)
    sim.control.expire_sessions()
    sim.control.reset_counters()
    for prefix in ("/services/oauth2/token", "/services/oauth2/introspect"):
        sim.control.add_fault(prefix, count=1, status=None, delay_seconds=3.0)

    outcomes = _concurrent_refreshes(runtime, account_id, 20, lock_ttl=5.0, timeout=4.5)

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    account = account_row(runtime, account_id)
    assert account.status == "active" and account.consecutive_refresh_failures == 0
    counters = sim.control.counters()
    assert counters["refresh_grants"] == 1 and counters["rejected_refreshes"] == 0
    token = runtime.crypto.decrypt(account.access_token_enc)
    assert {o.access_token for o in outcomes} == {token}
    sim.control.expire_sessions()  # and the rotated refresh token is the one stored
    assert SalesforceClient.for_account(runtime, account_id).limits()


class StallAfterGrant(requests.Session):
    """Holds the token *response* until released: the grant (and rotation) happened at
    Salesforce, and the holder is paused before it could store the new tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.reached = threading.Event()
        self.release = threading.Event()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        if url.endswith("/services/oauth2/token"):
            self.reached.set()
            assert self.release.wait(30)
        return response


def test_invalid_grant_waits_for_a_stalled_holder_instead_of_needs_reauth(
    sim, runtime, linked_account
):
    account_id = linked_account()
    sim.control.set_rotation(True)
    sim.control.reset_counters()
    http = StallAfterGrant()
    stalled = TokenManager(runtime, account_id, http=http, lock_ttl=0.3)
    held: dict = {}
    holder = threading.Thread(target=lambda: held.update(state=stalled.refresh(force=True)))
    holder.start()
    assert http.reached.wait(10)
    poll(lambda: not runtime.redis.exists(stalled.lock_name), timeout=5, message="lease lapse")

    # The sibling takes the free lock and spends the old (now rotated) refresh token.
    sibling = TokenManager(runtime, account_id)
    got: dict = {}

    def run_sibling() -> None:
        try:
            got["state"] = sibling.refresh(force=True)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            got["error"] = exc

    thread = threading.Thread(target=run_sibling)
    thread.start()
    poll(lambda: sim.control.counters()["rejected_refreshes"] == 1, message="invalid_grant")
    # The stalled holder is still inside its grant: the account must not be marked now.
    assert thread.is_alive() and account_row(runtime, account_id).status == "active"

    http.release.set()
    holder.join(30)
    thread.join(30)
    assert "error" not in got and stalled.refreshed
    account = account_row(runtime, account_id)
    assert account.status == "active" and account.consecutive_refresh_failures == 0
    token = runtime.crypto.decrypt(account.access_token_enc)
    assert got["state"].access_token == held["state"].access_token == token
    sim.control.expire_sessions()
    assert SalesforceClient.for_account(runtime, account_id).limits()
