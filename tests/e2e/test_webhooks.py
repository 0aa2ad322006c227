"""Webhooks end to end: real worker and beat, Redis, both databases, loopback receivers."""

from __future__ import annotations

import json
import re
import socket

import pytest
from sqlalchemy import func, select

from shared.models import Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent
from shared.webhooks.subscriptions import create_webhook
from tests.conftest import ROOT, poll
from tests.shared.outbound.servers import Receiver

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    BeatProcess,
    no_default_worker_fixture,
    save,
    settings_env,
    trigger,
    wait_status,
)

WEBHOOK_ENV = {**FAST_ENV, "FORCEBOT_WEBHOOK_RETRY_SCALE": "0.01"}
FAILING = """
name: always-fails
steps:
  - id: stop
    action: fail
    message: nope
"""


def readme_verify():
    """The verification snippet from the README, executed as a reader would paste it."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- webhook-verify -->\n```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own README
    return scope["verify"]


def subscribe(runtime, url, events):
    with runtime.Session.begin() as session:
        webhook, secret = create_webhook(session, runtime.crypto, {"url": url, "events": events})
        return webhook.id, secret


def deliveries(runtime, webhook_id):
    with runtime.Session() as session:
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        ).all()
        return [
            (d.event_type, d.status, d.attempts, [a.status_code for a in d.attempt_rows])
            for d in rows
        ]


@pytest.fixture
def delivering(settings, no_default_worker, worker_factory):
    """A fast worker and a beat: the beat ticks deliveries every second."""
    worker = worker_factory(**WEBHOOK_ENV)
    beat = BeatProcess({**settings_env(settings), **WEBHOOK_ENV})
    yield worker
    beat.stop()


@pytest.fixture
def receiver():
    with Receiver("127.0.0.1") as server:
        yield server


def test_500_twice_then_200_is_three_attempts_and_one_delivery(runtime, delivering, receiver):
    receiver.answer((500, {}, b"oops"), (500, {}, b"oops"))
    webhook_id, secret = subscribe(runtime, receiver.url + "/hook", ["run.failed"])
    save(runtime, FAILING)
    run_id = trigger(runtime, "always-fails", {})
    wait_status(runtime, run_id, "failed", timeout=60)
    poll(
        lambda: deliveries(runtime, webhook_id)[0][1] == "delivered" or None,
        60,
        0.2,
        message="delivery",
    )
    assert deliveries(runtime, webhook_id) == [("run.failed", "delivered", 3, [500, 500, 200])]
    assert len(receiver.requests) == 3
    last = receiver.requests[-1]
    body = json.loads(last["body"])
    assert body["type"] == "run.failed" and body["data"]["run"]["id"] == run_id
    assert set(body) == {"id", "type", "created_at", "data"}
    # the same event id on every attempt, so a receiver can de-duplicate
    assert len({json.loads(r["body"])["id"] for r in receiver.requests}) == 1
    verify = readme_verify()
    header = last["headers"]["Forcebot-Signature"]
    assert verify(secret, header, last["body"])
    assert not verify(secret + "x", header, last["body"])
    assert not verify(secret, header, last["body"] + b" ")
    with runtime.Session() as session:
        durations = session.scalars(select(WebhookAttempt.duration_ms)).all()
    assert len(durations) == 3 and all(d is not None and d >= 0 for d in durations)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_receiver_that_is_down_gets_the_event_when_it_returns(runtime, delivering, api_token):
    port = _free_port()
    webhook_id, _ = subscribe(runtime, f"http://127.0.0.1:{port}/hook", ["run.failed"])
    save(runtime, FAILING)
    wait_status(runtime, trigger(runtime, "always-fails", {}), "failed", timeout=60)
    poll(
        lambda: (deliveries(runtime, webhook_id)[0][2] >= 2) or None,
        60,
        0.2,
        message="two failed attempts",
    )
    ((_, status, _, codes),) = deliveries(runtime, webhook_id)
    assert status == "pending" and set(codes) == {None}
    with Receiver("127.0.0.1", port) as server:
        poll(
            lambda: deliveries(runtime, webhook_id)[0][1] == "delivered" or None,
            120,
            0.2,
            message="delivery after the receiver came back",
        )
        assert len(server.requests) == 1


def test_a_failing_run_is_one_event_even_if_the_worker_is_killed_before_delivery(
    runtime, settings, no_default_worker, worker_factory, receiver
):
    webhook_id, _ = subscribe(runtime, receiver.url, ["run.failed", "run.succeeded"])
    save(runtime, FAILING)
    first = worker_factory(name="victim", **WEBHOOK_ENV)  # no beat yet: nothing is delivered
    run_id = trigger(runtime, "always-fails", {})
    wait_status(runtime, run_id, "failed", timeout=60)
    first.kill()  # SIGKILL after the change committed, before any delivery
    assert deliveries(runtime, webhook_id) == [("run.failed", "pending", 0, [])]
    assert receiver.requests == []
    worker_factory(name="heir", **WEBHOOK_ENV)
    beat = BeatProcess({**settings_env(settings), **WEBHOOK_ENV})
    try:
        poll(
            lambda: deliveries(runtime, webhook_id)[0][1] == "delivered" or None,
            60,
            0.2,
            message="delivery by the new worker",
        )
    finally:
        beat.stop()
    with runtime.Session() as session:
        events = session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.type == "run.failed")
        )
    assert events == 1
    assert len(receiver.requests) == 1


def test_an_account_turning_needs_reauth_is_one_event(
    runtime, sim, linked_account, delivering, receiver
):
    account_id = linked_account()
    webhook_id, _ = subscribe(runtime, receiver.url, ["account.needs_reauth"])
    save(
        runtime,
        "name: list-cases\naccount: acme-prod\nsteps:\n"
        "  - {id: cases, action: salesforce.query, soql: SELECT Id FROM Case}\n",
    )
    sim.control.revoke_refresh_tokens()
    sim.control.expire_sessions()
    for _ in range(2):  # the second run fails at once without marking the account again
        wait_status(runtime, trigger(runtime, "list-cases", {}), "failed", timeout=60)
    poll(lambda: receiver.requests or None, 60, 0.2, message="the needs_reauth event to arrive")
    with runtime.Session() as session:
        events = session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == "account.needs_reauth")
        ).all()
    assert len(events) == 1
    assert events[0].data["account"] == {
        "id": account_id,
        "name": "acme-prod",
        "status": "needs_reauth",
        "status_reason": "expired access/refresh token",
    }
    poll(
        lambda: deliveries(runtime, webhook_id)[0][1] == "delivered" or None,
        30,
        0.2,
        message="delivered",
    )
    assert len(receiver.requests) == 1


def test_order_is_kept_per_run_while_an_earlier_event_retries(runtime, delivering, receiver):
    """run.waiting then run.failed of one run: the second waits behind the first's retries."""
    from shared import webhooks

    webhook_id, _ = subscribe(runtime, receiver.url, ["run.waiting", "run.failed"])
    receiver.answer((503, {}, b""), (503, {}, b""))
    with runtime.Session.begin() as session:
        webhooks.emit(session, "run.waiting", {"n": 1}, order_key="run:999")
        webhooks.emit(session, "run.failed", {"n": 2}, order_key="run:999")
    poll(
        lambda: all(d[1] == "delivered" for d in deliveries(runtime, webhook_id)) or None,
        60,
        0.2,
        message="both delivered",
    )
    order = [json.loads(r["body"])["data"]["n"] for r in receiver.requests]
    assert order == [1, 1, 1, 2]
    with runtime.Session() as session:
        assert session.get(Webhook, webhook_id).enabled


def test_needs_reauth_is_one_event_even_if_the_worker_is_killed_before_delivery(
    runtime, settings, sim, linked_account, no_default_worker, worker_factory, receiver
):
    linked_account()
    webhook_id, _ = subscribe(runtime, receiver.url, ["account.needs_reauth", "run.failed"])
    save(
        runtime,
        "name: list-cases\naccount: acme-prod\nsteps:\n"
        "  - {id: cases, action: salesforce.query, soql: SELECT Id FROM Case}\n",
    )
    sim.control.revoke_refresh_tokens()
    sim.control.expire_sessions()
    victim = worker_factory(name="victim", **WEBHOOK_ENV)  # no beat: nothing is delivered yet
    wait_status(runtime, trigger(runtime, "list-cases", {}), "failed", timeout=60)
    victim.kill()
    assert sorted(d[:2] for d in deliveries(runtime, webhook_id)) == [
        ("account.needs_reauth", "pending"),
        ("run.failed", "pending"),
    ]
    worker_factory(name="heir", **WEBHOOK_ENV)
    beat = BeatProcess({**settings_env(settings), **WEBHOOK_ENV})
    try:
        poll(
            lambda: all(d[1] == "delivered" for d in deliveries(runtime, webhook_id)) or None,
            60,
            0.2,
            message="both delivered by the new worker",
        )
    finally:
        beat.stop()
    types = sorted(json.loads(r["body"])["type"] for r in receiver.requests)
    assert types == ["account.needs_reauth", "run.failed"]


def test_a_finished_sync_is_one_sync_finished_event_with_its_counts(
    runtime, api, sim, linked_account, delivering, receiver
):
    """sync.finished is written with the sync run's outcome and carries its counts."""
    account_id = linked_account()
    for n in range(30):
        sim.control.create_record("Contact", {"LastName": f"Hook{n}", "Email": f"h{n}@x.example"})
    webhook_id, _ = subscribe(runtime, receiver.url + "/hook", ["sync.finished"])
    created = api.post(
        "/syncs",
        json={"name": "hooked", "account_id": account_id, "object": "Contact", "fields": ["Email"]},
    )
    assert created.status_code == 201, created.get_json()
    sync_id = created.get_json()["id"]
    started = api.post(f"/syncs/{sync_id}/runs", json={})
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["id"]
    wait_status(runtime, run_id, "succeeded", timeout=120)
    poll(
        lambda: (
            deliveries(runtime, webhook_id) and deliveries(runtime, webhook_id)[0][1] == "delivered"
        ),
        60,
        0.2,
        message="sync.finished delivered",
    )
    assert [d[:2] for d in deliveries(runtime, webhook_id)] == [("sync.finished", "delivered")]
    body = json.loads(receiver.requests[-1]["body"])
    sync = body["data"]["sync"]
    assert (sync["id"], sync["run_id"], sync["status"]) == (sync_id, run_id, "succeeded")
    assert sync["counts"]["records"] >= 30 and sync["counts"]["created"] >= 30
    with runtime.Session() as session:
        events = session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.type == "sync.finished")
        )
    assert events == 1
