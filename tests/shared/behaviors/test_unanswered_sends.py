"""A non-idempotent request that went out unanswered is outcome_unknown, never sent again.

The engine on a fake client: salesforce.create, a composite create and http.request POST
whose send raised ResponseLost fail as outcome_unknown after one send; a connect error
(nothing was sent) and an idempotent call stay retryable.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.engine import StepFailed, execute
from shared.salesforce.errors import ResponseLost, TransportError

from .fakes import FakeClient, RecordingRecorder, context, loaded


class PostingClient(FakeClient):
    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self._call("request", method, url)
        raise AssertionError("raise_on should have answered")

    def composite(self, records: list[dict[str, Any]], *, all_or_none: bool = False) -> list:
        self._call("composite", records)
        return []


def spec(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "once", "account": "acme-prod", "steps": [{"id": "s", **step}]}


CREATE = {"action": "salesforce.create", "sobject": "Case", "fields": {"Subject": "x"}}
COMPOSITE = {
    "action": "salesforce.composite",
    "operation": "create",
    "sobject": "Case",
    "records": [{"Subject": "x"}],
}
POST = {"action": "http.request", "method": "POST", "url": "/services/apexrest/x"}
LOST = ResponseLost("no response within 2s after the request was sent", error_code="timeout")


@pytest.mark.parametrize(
    "step, call", [(CREATE, "create"), (COMPOSITE, "composite"), (POST, "request")]
)
def test_an_unanswered_non_idempotent_request_is_outcome_unknown(step, call) -> None:
    client = PostingClient()
    client.raise_on[call] = LOST
    recorder = RecordingRecorder()
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(spec(step)), {}, recorder, client))
    error = info.value.error
    assert error["code"] == "outcome_unknown" and error["step"] == "s"
    assert "no response came back" in error["message"]
    assert "before pressing Retry" in error["message"]
    assert recorder.sent == ["s"] and [c[0] for c in client.calls] == [call]
    assert recorder.statuses() == {"s": "failed"}


def test_a_connect_error_on_a_create_stays_retryable() -> None:
    client = PostingClient()
    client.raise_on["create"] = TransportError("could not reach x", error_code="connection_error")
    with pytest.raises(TransportError) as info:
        execute(context(loaded(spec(CREATE)), {}, RecordingRecorder(), client))
    assert not isinstance(info.value, ResponseLost) and info.value.retryable


def test_an_unanswered_idempotent_request_stays_retryable() -> None:
    client = PostingClient()
    client.raise_on["update"] = LOST
    step = {"action": "salesforce.update", "sobject": "Case", "record_id": "500A", "fields": {}}
    with pytest.raises(ResponseLost):
        execute(context(loaded(spec(step)), {}, RecordingRecorder(), client))
