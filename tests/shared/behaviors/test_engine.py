"""The engine on a fake client: order, when, reuse of finished steps, foreach, errors."""

from __future__ import annotations

import time

import pytest

from shared.behaviors.engine import Cancelled, PriorSend, StepFailed, execute, sends_once
from shared.salesforce.errors import MalformedQuery, ServerError

from .fakes import FakeClient, RecordingRecorder, context, loaded

CASE = {
    "name": "create-case-for-email",
    "inputs": {"email": {"type": "string", "required": True}, "subject": {"type": "string"}},
    "steps": [
        {
            "id": "contact",
            "action": "salesforce.query",
            "soql": "SELECT Id FROM Contact WHERE Email = {{ inputs.email | soql }}",
        },
        {
            "id": "case",
            "action": "salesforce.create",
            "when": "{{ steps.contact.totalSize > 0 }}",
            "sobject": "Case",
            "fields": {
                "Subject": "{{ inputs.subject }}",
                "ContactId": "{{ steps.contact.records[0].Id }}",
            },
        },
    ],
    "result": "{{ steps.case.id if steps.case else none }}",
}


def test_steps_run_in_order_and_result_renders() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    recorder = RecordingRecorder()
    result = execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert [c[0] for c in client.calls] == ["query_result", "create"]
    assert client.calls[1][2] == {"Subject": None, "ContactId": "003A"}
    assert result.startswith("Cas")
    assert recorder.statuses() == {"contact": "succeeded", "case": "succeeded"}


def test_when_false_skips_and_output_is_null() -> None:
    client = FakeClient({"Contact": []})
    recorder = RecordingRecorder()
    result = execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert result is None
    assert recorder.statuses()["case"] == "skipped"
    assert [c[0] for c in client.calls] == ["query_result"]


def test_finished_steps_are_not_executed_again_in_the_attempt() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    done = {
        "contact": {"totalSize": 1, "done": True, "records": [{"Id": "003A"}]},
        "case": {"id": "500STORED", "success": True, "errors": []},
    }
    result = execute(context(loaded(CASE), {"email": "a@b.c"}, RecordingRecorder(done), client))
    assert client.calls == []
    assert result == "500STORED"


def test_set_foreach_and_loop_variables() -> None:
    definition = {
        "name": "loops",
        "steps": [
            {"id": "init", "action": "set", "vars": {"names": "{{ ['a', 'b', 'c'] }}"}},
            {
                "id": "each",
                "action": "foreach",
                "items": "{{ vars.names }}",
                "steps": [
                    {
                        "id": "make",
                        "action": "salesforce.create",
                        "sobject": "Lead",
                        "fields": {"LastName": "{{ item }}-{{ loop.index1 }}", "Company": "X"},
                    },
                    {"id": "count", "action": "set", "vars": {"last": "{{ steps.make.id }}"}},
                ],
            },
        ],
        "result": "{{ steps.each | length }}",
    }
    client = FakeClient()
    recorder = RecordingRecorder(done={"each[0].make": {"id": "STORED0"}})
    assert execute(context(loaded(definition), {}, recorder, client)) == 3
    created = [c[2]["LastName"] for c in client.calls]
    assert created == ["b-2", "c-3"]  # each[0].make finished earlier in this attempt
    keys = [e[1] for e in recorder.events if e[0] == "finish"]
    assert keys == [
        "init",
        "each[0].count",
        "each[1].make",
        "each[1].count",
        "each[2].make",
        "each[2].count",
        "each",
    ]


def test_foreach_iteration_limit() -> None:
    definition = {
        "name": "big",
        "steps": [
            {
                "id": "each",
                "action": "foreach",
                "items": "{{ range(20) | list }}",
                "max_iterations": 5,
                "steps": [{"id": "x", "action": "set", "vars": {"i": "{{ item }}"}}],
            }
        ],
    }
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(definition)))
    assert info.value.error["code"] == "too_many_iterations"


def test_fail_step() -> None:
    definition = {
        "name": "f",
        "steps": [
            {"id": "stop", "action": "fail", "message": "no {{ inputs.what }}", "code": "nope"}
        ],
    }
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(definition), {"what": "luck"}))
    assert info.value.error == {"code": "nope", "message": "no luck", "step": "stop"}


def test_template_escape_at_run_time_fails_the_step() -> None:
    definition = {
        "name": "e",
        "steps": [
            {"id": "x", "action": "set", "vars": {"a": "{{ inputs.v }}"}},
            {"id": "y", "action": "fail", "message": "{{ ''.__class__ }}"},
        ],
    }
    recorder = RecordingRecorder()
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(definition), {"v": 1}, recorder))
    assert info.value.error["code"] == "template_refused"
    assert recorder.statuses() == {"x": "succeeded", "y": "failed"}


def test_non_retryable_salesforce_error_becomes_step_failed() -> None:
    client = FakeClient()
    client.raise_on["query_result"] = MalformedQuery(
        "unexpected token", status=400, error_code="MALFORMED_QUERY"
    )
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(CASE), {"email": "a"}, client=client))
    assert info.value.error["code"] == "MALFORMED_QUERY"
    assert info.value.error["step"] == "contact"


def test_retryable_salesforce_error_propagates_after_recording() -> None:
    client = FakeClient()
    client.raise_on["query_result"] = ServerError("unavailable", status=503)
    recorder = RecordingRecorder()
    with pytest.raises(ServerError):
        execute(context(loaded(CASE), {"email": "a"}, recorder, client))
    assert recorder.statuses() == {"contact": "failed"}
    assert recorder.errors()["contact"]["status"] == 503


def test_cancel_is_checked_at_step_boundaries() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    with pytest.raises(Cancelled):
        execute(context(loaded(CASE), {"email": "a"}, RecordingRecorder(stop_after=1), client))
    assert [c[0] for c in client.calls] == ["query_result"]


def test_deadline() -> None:
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(CASE), {"email": "a"}, deadline=time.monotonic() - 1))
    assert info.value.error["code"] == "timeout"


def test_python_behavior_gets_context_and_is_recorded() -> None:
    seen = {}

    def fn(ctx):  # type: ignore[no-untyped-def]
        seen["inputs"] = ctx.inputs
        seen["run"] = ctx.run
        return ctx.salesforce().create("Lead", {"LastName": ctx.inputs["name"]})

    client = FakeClient()
    recorder = RecordingRecorder()
    behavior = loaded({}, definition=None, function=fn, name="py")
    result = execute(context(behavior, {"name": "Ada"}, recorder, client, run_info={"id": 9}))
    assert result["success"] is True
    assert seen == {"inputs": {"name": "Ada"}, "run": {"id": 9}}
    assert recorder.statuses() == {"python": "succeeded", "python:call-1": "succeeded"}
    # Finished in this attempt: not called again.
    assert execute(context(behavior, {"name": "Ada"}, recorder, client)) == result
    assert len(client.calls) == 1


# --------------------------------------------------------------------------- create once


def test_a_create_is_marked_sent_before_it_goes_out() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    recorder = RecordingRecorder()
    execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert recorder.sent == ["case"]  # the query is idempotent: no mark


def test_a_resumed_create_reuses_its_recorded_201() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    body = '{"id": "500RECORDED", "success": true, "errors": []}'
    recorder = RecordingRecorder(unfinished={"case": PriorSend(201, {}, body)})
    result = execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert result == "500RECORDED"
    assert [c[0] for c in client.calls] == ["query_result"] and recorder.sent == []


def test_a_resumed_create_without_a_response_is_outcome_unknown() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    recorder = RecordingRecorder(unfinished={"case": PriorSend()})
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert info.value.error["code"] == "outcome_unknown" and info.value.error["step"] == "case"
    assert [c[0] for c in client.calls] == ["query_result"]  # not sent again


def test_a_resumed_create_that_salesforce_refused_is_sent_again() -> None:
    client = FakeClient({"Contact": [{"Id": "003A"}]})
    recorder = RecordingRecorder(unfinished={"case": PriorSend(503, {}, "[]")})
    execute(context(loaded(CASE), {"email": "a@b.c"}, recorder, client))
    assert [c[0] for c in client.calls] == ["query_result", "create"]


@pytest.mark.parametrize(
    "action, method, once",
    [
        ("salesforce.create", None, True),
        ("http.request", "POST", True),
        ("http.request", "post", True),
        ("http.request", "PATCH", False),
        ("http.request", "PUT", False),
        ("http.request", None, False),
        ("salesforce.upsert", None, False),
        ("salesforce.update", None, False),
    ],
)
def test_which_requests_are_sent_once(action: str, method: str | None, once: bool) -> None:
    assert sends_once(action, {"method": method} if method else {}) is once
