"""Runs API: triggers, idempotency under concurrency, listing, retry/replay/cancel."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from shared.behaviors.store import save_behavior
from shared.models import Run
from tests.conftest import ApiClient

NOOP = """
name: noop
inputs:
  n: {type: integer, required: true}
  label: {type: string, enum: [a, b]}
steps:
  - id: s
    action: set
    vars: {x: "{{ inputs.n }}"}
result: "{{ vars.x }}"
"""


# These tests look at runs before any worker takes them.
pytestmark = pytest.mark.usefixtures("no_worker")


def _save(runtime, source: str = NOOP) -> None:
    with runtime.Session.begin() as session:
        save_behavior(session, source)


def _count(runtime) -> int:
    with runtime.Session() as session:
        return session.scalar(select(func.count()).select_from(Run))


def test_trigger_returns_202_queued(runtime, api):
    _save(runtime)
    response = api.post("/behaviors/noop/runs", json={"payload": {"n": 1}})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued" and isinstance(body["id"], int)
    run = api.get(f"/runs/{body['id']}").get_json()
    assert run["payload"] == {"n": 1} and run["behavior"] == "noop" and run["behavior_version"] == 1


def test_bad_payload_lists_every_problem_and_saves_nothing(runtime, api):
    _save(runtime)
    response = api.post("/behaviors/noop/runs", json={"payload": {}, "bogus": True})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == ["bogus: unknown field"]
    response = api.post("/behaviors/noop/runs", json={"payload": {"label": "c", "zzz": 1}})
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert "payload.n: required" in details
    assert any(d.startswith("payload.label:") for d in details)
    assert any(d.startswith("payload.zzz:") for d in details)
    assert _count(runtime) == 0


def test_unknown_behavior_is_404(api):
    response = api.post("/behaviors/nope/runs", json={"payload": {}})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_non_object_body_is_400(runtime, api):
    _save(runtime)
    response = api.post("/behaviors/noop/runs", data="[1]", content_type="application/json")
    assert response.status_code == 400


def test_twenty_concurrent_triggers_with_one_key_make_one_run(runtime, app, api_token):
    _save(runtime)
    barrier = threading.Barrier(20)
    results: list[tuple[int, int]] = []

    def post() -> None:
        client = ApiClient(app.test_client(), api_token)
        barrier.wait()
        response = client.post(
            "/behaviors/noop/runs", json={"payload": {"n": 7}, "idempotency_key": "order-42"}
        )
        results.append((response.status_code, response.get_json().get("id")))

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 20
    assert {status for status, _ in results} == {202}
    assert len({run_id for _, run_id in results}) == 1
    assert _count(runtime) == 1


def test_trigger_still_202_when_the_broker_is_down(runtime, api, monkeypatch):
    from kombu.exceptions import OperationalError

    from worker.celery_app import celery

    def refused(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    _save(runtime)
    monkeypatch.setattr(celery, "send_task", refused)
    response = api.post("/behaviors/noop/runs", json={"payload": {"n": 1}})
    assert response.status_code == 202
    assert _count(runtime) == 1  # committed; the reconciler sends it later


def test_list_filters_and_paginates(runtime, api):
    _save(runtime)
    ids = [
        api.post("/behaviors/noop/runs", json={"payload": {"n": n}}).get_json()["id"]
        for n in range(5)
    ]
    page = api.get("/runs?limit=2").get_json()
    assert [r["id"] for r in page["runs"]] == ids[::-1][:2]
    second = api.get(f"/runs?limit=2&cursor={page['next_cursor']}").get_json()
    assert [r["id"] for r in second["runs"]] == ids[::-1][2:4]
    assert api.get("/runs?status=queued&behavior=noop").get_json()["runs"]
    assert api.get("/runs?status=succeeded").get_json()["runs"] == []
    bad = api.get("/runs?status=nope&limit=0&cursor=xx")
    assert bad.status_code == 422 and len(bad.get_json()["error"]["details"]) == 3


def test_cancel_retry_replay(runtime, api):
    _save(runtime)
    run_id = api.post("/behaviors/noop/runs", json={"payload": {"n": 3}}).get_json()["id"]
    cancelled = api.post(f"/runs/{run_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert api.post(f"/runs/{run_id}/cancel").status_code == 409
    retried = api.post(f"/runs/{run_id}/retry")
    assert retried.status_code == 202 and retried.get_json()["status"] == "queued"
    assert retried.get_json()["payload"] == {"n": 3}
    assert api.post(f"/runs/{run_id}/retry").status_code == 409
    replay = api.post(f"/runs/{run_id}/replay").get_json()
    assert (
        replay["id"] != run_id and replay["replay_of"] == run_id and replay["payload"] == {"n": 3}
    )
    assert api.get("/runs/999999").status_code == 404
    assert api.post("/runs/999999/retry").status_code == 404


def test_routes_are_documented(api):
    paths = api.get("/openapi.json").get_json()["paths"]
    for path in (
        "/behaviors/{name}/runs",
        "/runs",
        "/runs/{id}",
        "/runs/{id}/retry",
        "/runs/{id}/cancel",
        "/runs/{id}/replay",
    ):
        assert path in paths


def test_payload_schema_is_served_and_agrees_with_the_trigger(runtime, api):
    import jsonschema

    _save(runtime)
    response = api.get("/behaviors/noop/payload.schema.json")
    assert response.status_code == 200
    schema = response.get_json()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert api.get("/behaviors/noop").get_json()["payload_schema"] == schema
    assert schema["required"] == ["n"] and schema["additionalProperties"] is False
    validator = jsonschema.Draft202012Validator(schema)
    for payload in ({"n": 1}, {"n": 2.0, "label": "a"}, {"n": 1, "label": None}, {},
                    {"n": "1"}, {"n": 1.5}, {"n": 1, "label": "c"}, {"n": 1, "x": 0}):  # fmt: skip
        response = api.post("/behaviors/noop/runs", json={"payload": payload})
        assert response.status_code in (202, 422), response.get_json()
        assert (response.status_code == 202) is validator.is_valid(payload), payload
    assert api.get("/behaviors/noop/payload.schema.json?version=2").status_code == 404
    assert api.get("/behaviors/nope/payload.schema.json").status_code == 404
    operation = api.get("/openapi.json").get_json()["paths"]
    assert "get" in operation["/behaviors/{name}/payload.schema.json"]
    body = operation["/behaviors/{name}/runs"]["post"]["requestBody"]["content"]
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = api.get("/openapi.json").get_json()["components"]["schemas"]
    described = components[ref]["properties"]["payload"]["description"]
    assert "/behaviors/{name}/payload.schema.json" in described


class _Statements:
    """Every SQL statement and transaction begin on the engine while the block runs."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.engine, self.event = engine, event
        self.sql: list[str] = []
        self.begins = 0

    def _on_sql(self, conn, cursor, statement, *args) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
            self.sql.append(statement.split(None, 1)[0].upper())

    def _on_begin(self, conn) -> None:
        self.begins += 1

    def __enter__(self) -> _Statements:
        self.event.listen(self.engine, "before_cursor_execute", self._on_sql)
        self.event.listen(self.engine, "begin", self._on_begin)
        return self

    def __exit__(self, *exc) -> None:
        self.event.remove(self.engine, "before_cursor_execute", self._on_sql)
        self.event.remove(self.engine, "begin", self._on_begin)


def test_a_trigger_is_one_transaction_reading_the_behavior_once(runtime, api):
    _save(runtime)
    assert api.post("/behaviors/noop/runs", json={"payload": {"n": 1}}).status_code == 202
    # The token checked out on that first request; within its cache time it needs no read.
    with _Statements(runtime.engine) as seen:
        response = api.post("/behaviors/noop/runs", json={"payload": {"n": 2}})
    assert response.status_code == 202
    assert seen.begins == 1
    assert seen.sql == ["SELECT", "INSERT"]  # the behavior's current version, the run
    with _Statements(runtime.engine) as seen:
        response = api.post("/behaviors/noop/runs", json={"payload": {"n": 3}})
        assert response.status_code == 202
    assert seen.begins == 1 and seen.sql == ["SELECT", "INSERT"]


def test_a_trigger_records_the_current_version_and_its_account(runtime, api, named_account):
    named_account("acme-prod")
    _save(runtime)
    _save(runtime, NOOP.replace("name: noop", "name: noop\naccount: acme-prod"))
    body = api.post("/behaviors/noop/runs", json={"payload": {"n": 1}}).get_json()
    with runtime.Session() as session:
        from shared.models import Account

        run = session.get(Run, body["id"])
        account = session.scalars(select(Account).where(Account.name == "acme-prod")).one()
        assert (run.behavior_version, run.account_id) == (2, account.id)
    _save(runtime)  # version 3 names no account
    body = api.post("/behaviors/noop/runs", json={"payload": {"n": 1}}).get_json()
    with runtime.Session() as session:
        run = session.get(Run, body["id"])
        assert (run.behavior_version, run.account_id) == (3, None)


def test_a_trigger_sends_its_message_without_a_task_sent_event(runtime, api, settings):
    import time

    import redis

    _save(runtime)
    client = redis.Redis.from_url(settings.redis_url)
    events = client.pubsub()
    events.psubscribe("*celeryev*")  # Celery's event exchange, whatever the key prefix
    try:
        assert events.get_message(timeout=5)["type"] == "psubscribe"
        before = client.llen("forcebot")
        assert api.post("/behaviors/noop/runs", json={"payload": {"n": 1}}).status_code == 202
        assert client.llen("forcebot") == before + 1  # the message itself was sent
        deadline = time.monotonic() + 1.0  # an event would be published before the POST returned
        seen = []
        while time.monotonic() < deadline:
            message = events.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                seen.append(message["channel"])
        assert not [c for c in seen if b"task.sent" in c or b"task-sent" in c], seen
    finally:
        events.close()
        client.close()
