"""salesforce.composite with creates is sent once, as salesforce.create is."""

from __future__ import annotations

from typing import Any

import pytest

from shared.behaviors.engine import PriorSend, StepFailed, execute, sends_once
from tests.shared.behaviors.fakes import FakeClient, RecordingRecorder, context, loaded

MADE = [{"id": "003RECORDED", "success": True, "errors": []}]
SPEC = {
    "name": "c",
    "steps": [
        {
            "id": "made",
            "action": "salesforce.composite",
            "operation": "create",
            "sobject": "Contact",
            "records": [{"LastName": "A"}],
        }
    ],
    "result": "{{ steps.made }}",
}


class CompositeClient(FakeClient):
    def composite(self, records: list[dict[str, Any]], *, all_or_none: bool = False) -> list:
        self._call("composite", records)
        return [{"id": "003NEW", "success": True, "errors": []}]


@pytest.mark.parametrize(
    "operation, once", [("create", True), ("update", False), ("delete", False)]
)
def test_only_composite_creates_send_once(operation: str, once: bool) -> None:
    assert sends_once("salesforce.composite", {"operation": operation}) is once


def test_a_composite_create_is_marked_sent_and_reuses_its_recorded_200() -> None:
    recorder = RecordingRecorder()
    client = CompositeClient()
    assert execute(context(loaded(SPEC), {}, recorder, client)) == [
        {"id": "003NEW", "success": True, "errors": []}
    ]
    assert recorder.sent == ["made"]

    import json

    resumed = RecordingRecorder(unfinished={"made": PriorSend(200, {}, json.dumps(MADE))})
    client = CompositeClient()
    assert execute(context(loaded(SPEC), {}, resumed, client)) == MADE
    assert client.calls == []


def test_a_resumed_composite_create_without_a_response_is_outcome_unknown() -> None:
    recorder = RecordingRecorder(unfinished={"made": PriorSend()})
    client = CompositeClient()
    with pytest.raises(StepFailed) as info:
        execute(context(loaded(SPEC), {}, recorder, client))
    assert info.value.error["code"] == "outcome_unknown"
    assert "Contact create" in info.value.error["message"]
    assert client.calls == []
