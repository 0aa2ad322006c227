"""Control API: faults, counters, concurrency, request log, reset, demo seeding."""

from __future__ import annotations

import threading
import time

import requests
from simhelpers import API

from simulator.server import SimulatorServer, seed_demo
from simulator.state import SimState
from tests.conftest import poll


def test_fault_json_with_retry_after(rest, control):
    control.add_fault(
        f"{API}/query",
        count=2,
        status=503,
        error_code="SERVER_UNAVAILABLE",
        message="Try later",
        retry_after=7,
    )
    for _ in range(2):
        resp = rest("GET", f"{API}/query", params={"q": "SELECT Id FROM Account"})
        assert resp.status_code == 503
        assert resp.headers["Retry-After"] == "7"
        assert resp.json() == [{"message": "Try later", "errorCode": "SERVER_UNAVAILABLE"}]
    assert rest("GET", f"{API}/query", params={"q": "SELECT Id FROM Account"}).status_code == 200
    assert control.faults() == []


def test_fault_only_matches_prefix(rest, control):
    control.add_fault(f"{API}/sobjects/Case", status=500, error_code="UNKNOWN_EXCEPTION")
    assert rest("GET", f"{API}/sobjects/Account/describe").status_code == 200
    resp = rest("GET", f"{API}/sobjects/Case/describe")
    assert resp.status_code == 500 and resp.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"


def test_fault_concurrent_limit_message(rest, control):
    control.add_fault(
        f"{API}/",
        status=403,
        error_code="REQUEST_LIMIT_EXCEEDED",
        message="ConcurrentPerOrgLongTxn Limit exceeded.",
    )
    resp = rest("GET", f"{API}/limits")
    assert resp.status_code == 403
    assert resp.json()[0]["message"] == "ConcurrentPerOrgLongTxn Limit exceeded."


def test_fault_html_body(rest, control):
    control.add_fault("/services/data", status=502, html=True, message="Bad Gateway")
    resp = rest("GET", f"{API}/limits")
    assert resp.status_code == 502
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "<html>" in resp.text and "Bad Gateway" in resp.text


def test_fault_delay(rest, control):
    control.add_fault(f"{API}/limits", status=504, delay_seconds=0.3, error_code="TIMEOUT")
    started = time.monotonic()
    resp = rest("GET", f"{API}/limits")
    assert resp.status_code == 504
    assert time.monotonic() - started >= 0.3
    control.add_fault(f"{API}/limits", status=None, delay_seconds=0.2)  # slow, then served
    started = time.monotonic()
    assert rest("GET", f"{API}/limits").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_on_token_endpoint(oauth, control, session):
    control.add_fault("/services/oauth2/token", status=503, error_code="unavailable",
                      message="maintenance", retry_after="2")  # fmt: skip
    resp = oauth.refresh(session["refresh_token"])
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"
    assert resp.json() == {"error": "unavailable", "error_description": "maintenance"}
    assert oauth.refresh(session["refresh_token"]).status_code == 200


def test_faulted_calls_do_not_count(rest, control):
    control.add_fault(f"{API}/limits", status=503)
    rest("GET", f"{API}/limits")
    assert control.counters()["api_calls"] == 0
    rest("GET", f"{API}/sobjects")
    rest("GET", f"{API}/sobjects")
    assert control.counters()["api_calls"] == 2
    assert control.settings()["api_usage"] == 2


def test_counters_and_peak_concurrency(oauth, control, session):
    control.reset_counters()
    control.add_fault(f"{API}/sobjects", count=5, status=None, delay_seconds=1.0)
    barrier = threading.Barrier(5)
    results: list[int] = []

    def call() -> None:
        barrier.wait(timeout=10)
        results.append(oauth.rest("GET", f"{API}/sobjects", session["access_token"]).status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    # Observed while the delayed requests are still in flight, not only after they finished.
    poll(
        lambda: control.counters()["peak_concurrency"] >= 5,
        timeout=10,
        interval=0.02,
        message="five requests in flight at once",
    )
    for thread in threads:
        thread.join(timeout=10)
    assert results == [200] * 5
    counters = control.counters()
    assert counters["peak_concurrency"] == 5
    assert counters["api_calls"] == 5
    assert counters["in_flight"] == 0


def test_counters_count_grants(oauth, control):
    tokens = oauth.login()
    oauth.refresh(tokens["refresh_token"])
    oauth.refresh("bogus")
    counters = control.counters()
    assert counters["code_grants"] == 1
    assert counters["refresh_grants"] == 1
    assert counters["rejected_refreshes"] == 1


def test_request_log(oauth, control, session):
    control.clear_log()
    oauth.rest("GET", f"{API}/sobjects", session["access_token"])
    oauth.refresh(session["refresh_token"])
    log = control.log()
    assert [(e["method"], e["host"], e["path"], e["status"]) for e in log] == [
        ("GET", "instance", f"{API}/sobjects", 200),
        ("POST", "login", "/services/oauth2/token", 200),
    ]
    assert log[0]["token_id"].startswith("at") and len(log[0]["token_fingerprint"]) == 12
    assert log[1]["token_id"].startswith("rt")
    text = str(log)
    assert session["access_token"] not in text and session["refresh_token"] not in text
    assert log[0]["ts"].endswith("+0000")


def test_log_redacts_query_secrets(oauth, control, session):
    control.clear_log()
    requests.get(
        f"{oauth.sim.login_url}/services/oauth2/revoke",
        params={"token": session["access_token"]},
        timeout=10,
    )
    entry = control.log()[-1]
    assert session["access_token"] not in entry["query"]
    assert entry["query"] == "token=%5Bredacted%5D"


def test_expire_sessions(oauth, control, session):
    assert oauth.rest("GET", f"{API}/limits", session["access_token"]).status_code == 200
    assert control.expire_sessions() >= 1
    assert oauth.rest("GET", f"{API}/limits", session["access_token"]).status_code == 401


def test_reset_forgets_everything(oauth, control, session):
    control.seed("Account", 3)
    control.set_rotation(True)
    control.reset()
    assert control.apps() == []
    assert control.records("Account") == []
    assert control.settings()["rotate_refresh_tokens"] is False
    assert oauth.rest("GET", f"{API}/limits", session["access_token"]).status_code == 401


def test_app_registration_update(control, oauth):
    app = control.register_app("x-app", "x-secret", ["http://127.0.0.1:1/cb"])
    assert app["auto_approve"] is False and app["redirect_uris"] == ["http://127.0.0.1:1/cb"]
    updated = control.update_app("x-app", redirect_uris=["http://127.0.0.1:2/cb"])
    assert updated["redirect_uris"] == ["http://127.0.0.1:2/cb"]
    bad = requests.post(f"{oauth.sim.login_url}/_sim/apps", json={"client_id": "y"}, timeout=10)
    assert bad.status_code == 400


def test_seed_demo_and_explicit_ports():
    state = SimState()
    info = seed_demo(state, "demo-id", "demo-secret", "http://127.0.0.1:5000/oauth/callback")
    assert state.apps["demo-id"].auto_approve is False
    assert len(info["account_ids"]) >= 1 and len(info["contact_ids"]) >= 1
    with SimulatorServer(state=state) as sim:
        assert sim.login_url.startswith("http://127.0.0.1:")
        assert sim.instance_url != sim.login_url
        assert sim.control.info()["org_name"] == "Acme Simulated Org"
        assert sim.control.info()["username"] == "admin@acme.sim"
        assert len(sim.control.records("Contact")) == len(info["contact_ids"])
        page = requests.get(
            f"{sim.login_url}/services/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "demo-id",
                "redirect_uri": "http://127.0.0.1:5000/oauth/callback",
                "code_challenge": "x" * 43,
                "code_challenge_method": "S256",
            },
            timeout=10,
        )
        assert page.status_code == 200 and "Allow" in page.text
