"""The client against the simulator over real HTTP: calls, paging, hosts, refresh, faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.models import Account, utcnow
from shared.salesforce import (
    DailyLimitExceeded,
    HostNotAllowed,
    NeedsReauth,
    RateLimited,
    SalesforceClient,
    ServerError,
)
from shared.salesforce.errors import MalformedQuery, NotFound
from shared.salesforce.limits import parse_limit_info
from tests.shared.salesforce.support import account_row


def rest_log(sim: Any) -> list[dict[str, Any]]:
    return [e for e in sim.control.log() if e["path"].startswith("/services/data")]


def test_crud_query_and_usage_recorded(sim, runtime, linked_account):
    account_id = linked_account()
    exchanges: list[dict] = []
    client = SalesforceClient.for_account(runtime, account_id, on_exchange=exchanges.append)
    created = client.create("Contact", {"LastName": "Lovelace", "Email": "ada@example.com"})
    assert created["success"] and created["id"]
    client.update("Contact", created["id"], {"FirstName": "Ada"})
    record = client.get("Contact", created["id"], fields=["FirstName", "LastName"])
    assert record["FirstName"] == "Ada"
    rows = list(client.query("SELECT Id, LastName FROM Contact WHERE LastName = 'Lovelace'"))
    assert [r["Id"] for r in rows] == [created["id"]]
    client.delete("Contact", created["id"])
    with pytest.raises(NotFound) as info:
        client.get("Contact", created["id"])
    assert info.value.status == 404

    row = account_row(runtime, account_id)
    # The row holds the first figure; later ones are debounced (see the next test).
    assert (row.api_usage_used, row.api_usage_max) == (1, 100000)
    assert client.usage is not None and client.usage.used >= 5
    # Every exchange was reported, with the token redacted.
    assert len(exchanges) >= 6
    first = exchanges[0]
    assert first["method"] == "POST" and first["status"] == 201
    assert first["request_headers"]["Authorization"] == "Bearer [redacted]"
    token = runtime.crypto.decrypt(row.access_token_enc)
    assert all(token not in repr(e) for e in exchanges)


def test_usage_is_written_when_due_not_on_every_response(sim, runtime, linked_account):
    account_id = linked_account(api_reserve_percent=10)
    sim.control.set_limits(max=1000, usage=890)
    client = SalesforceClient.for_account(runtime, account_id)
    for _ in range(5):
        client.query_page("SELECT Id FROM Contact")
    assert client.usage is not None and client.usage.used == 895
    assert account_row(runtime, account_id).api_usage_used == 891  # the first figure only
    for _ in range(5):
        client.query_page("SELECT Id FROM Contact")
    assert account_row(runtime, account_id).api_usage_used == 900  # crossed the reserve line

    client.usage_write_seconds = 0.0  # as if the interval had passed before each response
    client.query_page("SELECT Id FROM Contact")
    assert account_row(runtime, account_id).api_usage_used == 901


def test_query_follows_next_records_url_lazily(sim, runtime, linked_account):
    account_id = linked_account()
    sim.control.seed("Account", 450)
    client = SalesforceClient.for_account(runtime, account_id)
    sim.control.clear_log()
    rows = client.query("SELECT Id, Name FROM Account", batch_size=200)
    first = next(rows)
    assert first["Id"]
    assert len(rest_log(sim)) == 1  # lazy: only the first page so far
    assert len([first, *rows]) == 450
    assert len(rest_log(sim)) == 3
    result = client.query_result("SELECT Id FROM Account", limit=5)
    assert len(result["records"]) == 5 and result["totalSize"] == 450


def test_upsert_and_composite(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    records = [
        {"attributes": {"type": "Contact"}, "LastName": f"C{i}", "Email": f"c{i}@x.test"}
        for i in range(3)
    ]
    results = client.composite(records, all_or_none=True)
    assert [r["success"] for r in results] == [True, True, True]
    assert client.limits()["DailyApiRequests"]["Max"] == 100000


def test_malformed_query_fails_at_once_with_its_error_code(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    with pytest.raises(MalformedQuery) as info:
        client.query_page("SELEC Id FROM Contact")
    assert info.value.status == 400
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.retryable is False
    response = client.request(
        "GET", f"{client.base_path}/query", params={"q": "SELEC"}, raise_for_status=False
    )
    assert response.status_code == 400


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        _Recorder.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_token_never_goes_to_another_host(sim, runtime, linked_account, other_server):
    client = SalesforceClient.for_account(runtime, linked_account())
    with pytest.raises(HostNotAllowed) as info:
        client.request("GET", f"{other_server}/steal")
    assert info.value.retryable is False
    assert _Recorder.seen == []  # nothing was sent at all

    # A relative URL goes to the instance, with the token.
    sim.control.clear_log()
    response = client.request("GET", f"/services/data/v{client.api_version}/limits")
    assert response.status_code == 200
    [entry] = rest_log(sim)
    assert entry["host"] == "instance" and entry["token_id"]
    # The identity URL (login host) is allowed too.
    row = account_row(runtime, client.account_id)
    assert client.request("GET", row.identity_url).json()["user_id"] == row.user_id


def test_html_from_an_edge_proxy_is_an_error_not_a_crash(sim, runtime, linked_account):
    client = SalesforceClient.for_account(runtime, linked_account())
    sim.control.add_fault("/services/data", status=503, html=True)
    with pytest.raises(ServerError) as info:
        client.limits()
    assert info.value.status == 503 and info.value.retryable
    assert "503" in info.value.message and "<" not in info.value.message


def test_daily_limit_raises_daily_limit_exceeded(sim, runtime, linked_account):
    account_id = linked_account()
    client = SalesforceClient.for_account(runtime, account_id)
    sim.control.set_limits(max=100, usage=100)
    with pytest.raises(DailyLimitExceeded) as info:
        client.query_page("SELECT Id FROM Contact")
    assert info.value.retryable is False and isinstance(info.value, RateLimited)
    assert account_row(runtime, account_id).quota_exhausted_until > utcnow()


def test_needs_reauth_account_refuses_before_sending(sim, runtime, linked_account):
    account_id = linked_account()
    with runtime.Session.begin() as session:
        account = session.get(Account, account_id)
        account.status = "needs_reauth"
        account.status_reason = "expired access/refresh token"
    sim.control.clear_log()
    with pytest.raises(NeedsReauth, match="expired access/refresh token"):
        SalesforceClient.for_account(runtime, account_id).limits()
    assert rest_log(sim) == []


def test_limit_info_forms():
    assert parse_limit_info("api-usage=25/5000") == parse_limit_info(" api-usage = 25/5000 ")
    plain = parse_limit_info("api-usage=25/5000")
    assert plain is not None and (plain.used, plain.max) == (25, 5000)
    per_app = parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=x)")
    assert per_app is not None and per_app.used == 25 and per_app.per_app == {"x": (17, 250)}
    bursts = parse_limit_info("api-usage=10018/100000; api-bursts=1/750")
    assert bursts is not None and bursts.used == 10018 and bursts.bursts == (1, 750)
    assert parse_limit_info("") is None and parse_limit_info("garbage") is None


def test_introspection_sets_expiry_from_exp(sim, runtime, linked_account):
    from shared.salesforce.auth import refresh_account

    account_id = linked_account(use_introspection=True, session_timeout_minutes=120)
    sim.control.set_session_timeout(1800)  # the org's real timeout is shorter than configured
    assert refresh_account(runtime, account_id, force=True) is True
    account = account_row(runtime, account_id)
    lifetime = account.token_expires_at - account.token_issued_at
    assert abs(lifetime.total_seconds() - 1800) < 2
    paths = [e["path"] for e in sim.control.log()]
    assert "/services/oauth2/introspect" in paths


def test_unreadable_introspection_keeps_the_refreshed_token(sim, runtime, linked_account):
    from shared.salesforce.auth import refresh_account

    account_id = linked_account(use_introspection=True, session_timeout_minutes=120)
    sim.control.add_fault("/services/oauth2/introspect", status=200, html=True)
    before = account_row(runtime, account_id)
    assert refresh_account(runtime, account_id, force=True) is True
    after = account_row(runtime, account_id)
    assert after.token_version == before.token_version + 1
    assert after.access_token_enc != before.access_token_enc
    lifetime = after.token_expires_at - after.token_issued_at
    assert lifetime.total_seconds() == 120 * 60  # the service's session timeout


def test_refresh_now_records_health(sim, runtime, linked_account):
    from shared.salesforce.auth import refresh_account

    account_id = linked_account()
    before = account_row(runtime, account_id)
    assert refresh_account(runtime, account_id) is True
    after = account_row(runtime, account_id)
    assert after.refresh_count == before.refresh_count + 1
    assert after.last_refresh_at is not None and after.last_refresh_error is None
    # Not due: the beat's non-forced refresh leaves it alone.
    assert refresh_account(runtime, account_id, force=False) is False


def test_usage_writes_are_debounced_per_process_not_per_client(sim, runtime, linked_account):
    # A client lives for one run: a worker making one call per run would otherwise write the
    # account row on every run.
    account_id = linked_account()
    sim.control.set_limits(max=1000, usage=100)
    soql = "SELECT Id FROM Contact"
    SalesforceClient.for_account(runtime, account_id).query_page(soql)
    assert account_row(runtime, account_id).api_usage_used == 101
    SalesforceClient.for_account(runtime, account_id).query_page(soql)
    assert account_row(runtime, account_id).api_usage_used == 101  # a new client, same process
    late = SalesforceClient.for_account(runtime, account_id)
    late.usage_write_seconds = 0.0  # as if the interval had passed
    late.query_page(soql)
    assert account_row(runtime, account_id).api_usage_used == 103


def test_a_known_token_version_reuses_the_token_read_by_this_process(sim, runtime, linked_account):
    from sqlalchemy import event, update

    account_id = linked_account()
    version = account_row(runtime, account_id).token_version
    SalesforceClient.for_account(runtime, account_id, token_version=version).limits()
    begun: list[int] = []

    def count(_conn: Any) -> None:
        begun.append(1)

    event.listen(runtime.engine, "begin", count)
    try:
        client = SalesforceClient.for_account(runtime, account_id, token_version=version)
        assert begun == []  # the token came from the cache
        assert client.limits()["DailyApiRequests"]
        with runtime.Session.begin() as session:
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(token_version=Account.token_version + 1)
            )
        begun.clear()
        SalesforceClient.for_account(runtime, account_id, token_version=version + 1)
        assert len(begun) == 1  # a new version: the row is read again
        begun.clear()
        SalesforceClient.for_account(runtime, account_id)
        assert len(begun) == 1  # no version known: always read
    finally:
        event.remove(runtime.engine, "begin", count)
