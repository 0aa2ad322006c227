"""A Python behavior's creates and POSTs are journaled: a re-run of the function replays them.

Each non-idempotent call is the step row `python:call-<n>`; calling the function again (a
resumed or retried attempt) returns recorded results by position without sending, refuses a
call marked sent with no response (outcome_unknown), and refuses a different call at the same
position (replay_mismatch). Idempotent calls are sent again.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.engine import PriorSend, StepFailed, execute
from shared.salesforce.errors import ResponseLost, ServerError

from .fakes import FakeClient, RecordingRecorder, context, loaded


def python(fn: Any) -> Any:
    return loaded({}, definition=None, function=fn, name="py", account="acme-prod")


def two_creates(ctx: Any) -> dict[str, Any]:
    sf = ctx.salesforce()
    first = sf.create("Account", {"Name": "A"})
    sf.query_result("SELECT Id FROM Account")
    second = sf.create("Contact", {"LastName": "B", "AccountId": first["id"]})
    return {"account": first["id"], "contact": second["id"]}


def again(recorder: RecordingRecorder) -> RecordingRecorder:
    """The same recorder as a resumed attempt sees it: the function's step did not finish."""
    recorder.done.pop("python", None)
    return recorder


def test_each_create_is_a_marked_call_with_its_result() -> None:
    client, recorder = FakeClient(), RecordingRecorder()
    result = execute(context(python(two_creates), {}, recorder, client))
    assert recorder.sent == ["python:call-1", "python:call-2"]
    assert recorder.done["python:call-1"] == {
        "call": "salesforce.create Account",
        "result": {"id": result["account"], "success": True, "errors": []},
    }
    assert recorder.statuses()["python"] == "succeeded"


def test_a_rerun_replays_recorded_creates_and_sends_queries_again() -> None:
    client, recorder = FakeClient(), RecordingRecorder()
    first = execute(context(python(two_creates), {}, recorder, client))
    again(recorder).done.pop("python:call-2")  # as if the worker died before the 2nd create
    second = execute(context(python(two_creates), {}, recorder, client))
    names = [c[0] for c in client.calls]
    assert names == ["create", "query_result", "create", "query_result", "create"]
    assert second["account"] == first["account"]  # replayed, not created again


def test_a_retried_attempt_does_not_create_again() -> None:
    """A retryable fault after the create (here a 503 on the query) re-runs the function."""
    client, recorder = FakeClient(), RecordingRecorder()
    client.raise_on["query_result"] = ServerError("busy", status=503)
    with pytest.raises(ServerError):
        execute(context(python(two_creates), {}, recorder, client))
    del client.raise_on["query_result"]
    execute(context(python(two_creates), {}, recorder, client))
    assert [c[0] for c in client.calls].count("create") == 2  # Account once, Contact once


def test_a_call_marked_sent_without_a_response_is_outcome_unknown() -> None:
    client = FakeClient()
    recorder = RecordingRecorder(unfinished={"python:call-1": PriorSend()})
    with pytest.raises(StepFailed) as info:
        execute(context(python(two_creates), {}, recorder, client))
    error = info.value.error
    assert error["code"] == "outcome_unknown" and error["step"] == "python:call-1"
    assert "Account create" in error["message"] and "check in Salesforce" in error["message"]
    assert client.calls == []  # nothing sent
    assert recorder.statuses() == {"python": "failed", "python:call-1": "failed"}


def test_a_call_whose_201_was_recorded_is_reused() -> None:
    client = FakeClient()
    body = '{"id": "001RECORDED", "success": true, "errors": []}'
    recorder = RecordingRecorder(unfinished={"python:call-1": PriorSend(201, {}, body)})
    result = execute(context(python(two_creates), {}, recorder, client))
    assert result["account"] == "001RECORDED"
    assert [c[0] for c in client.calls] == ["query_result", "create"]
    assert recorder.sent == ["python:call-2"]


def test_a_call_refused_by_salesforce_is_sent_again() -> None:
    client = FakeClient()
    recorder = RecordingRecorder(unfinished={"python:call-1": PriorSend(503, {}, "[]")})
    execute(context(python(two_creates), {}, recorder, client))
    assert [c[0] for c in client.calls] == ["create", "query_result", "create"]


def test_an_unanswered_create_is_outcome_unknown_even_when_the_function_catches_it() -> None:
    def careless(ctx: Any) -> str:
        sf = ctx.salesforce()
        try:
            sf.create("Case", {"Subject": "x"})
        except Exception:  # noqa: BLE001 - what a careless behavior might do
            pass
        with pytest.raises(StepFailed):
            sf.create("Case", {"Subject": "y"})  # nothing more is sent after an unknown
        return "done"

    client = FakeClient()
    client.raise_on["create"] = ResponseLost("no response", error_code="timeout")
    recorder = RecordingRecorder()
    with pytest.raises(StepFailed) as info:
        execute(context(python(careless), {}, recorder, client))
    assert info.value.error["code"] == "outcome_unknown"
    assert [c[0] for c in client.calls] == ["create"]
    # The call stays "sent, unanswered" until the function's failure is recorded.
    finishes = [e[1] for e in recorder.events if e[0] == "finish"]
    assert finishes == ["python", "python:call-1"]


def test_a_different_call_at_a_recorded_position_is_refused() -> None:
    client, recorder = FakeClient(), RecordingRecorder()
    execute(context(python(two_creates), {}, recorder, client))

    def reordered(ctx: Any) -> None:
        ctx.salesforce().create("Contact", {"LastName": "B"})

    with pytest.raises(StepFailed) as info:
        execute(context(python(reordered), {}, again(recorder), client))
    assert info.value.error["code"] == "replay_mismatch"
    assert "same order" in info.value.error["message"]
    assert [c[0] for c in client.calls].count("create") == 2


def test_a_caught_replay_mismatch_still_fails_and_sends_nothing_more() -> None:
    client, recorder = FakeClient(), RecordingRecorder()
    execute(context(python(two_creates), {}, recorder, client))

    def careless(ctx: Any) -> str:
        sf = ctx.salesforce()
        try:
            sf.create("Contact", {"LastName": "B"})  # call 1 was an Account create
        except Exception:  # noqa: BLE001 - what a careless behavior might do
            pass
        with pytest.raises(StepFailed):
            sf.create("Lead", {"LastName": "C"})  # not matched, and not sent
        return "done"

    with pytest.raises(StepFailed) as info:
        execute(context(python(careless), {}, again(recorder), client))
    assert info.value.error["code"] == "replay_mismatch"
    assert [c[0] for c in client.calls].count("create") == 2  # the first run's two only


def test_request_posts_are_journaled_and_replayed_as_responses() -> None:
    class Posting(FakeClient):
        def request(self, method: str, url: str, **kwargs: Any) -> Any:
            import requests

            self._call("request", method, url)
            response = requests.Response()
            response.status_code = 201
            response._content = b'{"ok": 1}'
            response.headers["Content-Type"] = "application/json"
            return response

    def post(ctx: Any) -> Any:
        sf = ctx.salesforce()
        sf.request("GET", "/services/data/")
        return sf.request("POST", "/services/apexrest/x", json={}).json()

    client, recorder = Posting(), RecordingRecorder()
    assert execute(context(python(post), {}, recorder, client)) == {"ok": 1}
    assert execute(context(python(post), {}, again(recorder), client)) == {"ok": 1}
    assert [c[1] for c in client.calls] == ["GET", "POST", "GET"]
