"""A recording StepRecorder, a stand-in for the Salesforce client, and behavior test data."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from shared.behaviors.engine import ClientFactory, ExecutionContext
from shared.behaviors.store import LoadedBehavior
from shared.models import Account, Behavior, BehaviorVersion, Service


class RecordingRecorder:
    """Keeps what the engine reports; `done` pre-seeds steps finished earlier in the attempt."""

    def __init__(
        self,
        done: dict[str, Any] | None = None,
        stop_after: int | None = None,
        unfinished: dict[str, Any] | None = None,
    ) -> None:
        self.done = dict(done or {})
        self.unfinished = dict(unfinished or {})  # key -> engine.PriorSend of a crashed send
        self.sent: list[str] = []
        self.events: list[tuple[Any, ...]] = []
        self.exchanges: list[tuple[str, dict[str, Any]]] = []
        self.stop_after = stop_after
        self.boundaries = 0

    def completed(self, key: str) -> tuple[bool, Any]:
        if key in self.done:
            return True, self.done[key]
        return False, None

    def start(self, key: str, action: str) -> None:
        self.events.append(("start", key, action))

    def finish(self, key: str, status: str, output: Any = None, error: dict | None = None) -> None:
        self.events.append(("finish", key, status, output, error))
        if status in ("succeeded", "skipped"):
            self.done[key] = output

    def exchange(self, key: str, summary: dict[str, Any]) -> None:
        self.exchanges.append((key, summary))

    def mark_sent(self, key: str) -> None:
        self.sent.append(key)

    def unfinished_send(self, key: str) -> Any:
        return self.unfinished.pop(key, None)

    def should_stop(self) -> bool:
        self.boundaries += 1
        return self.stop_after is not None and self.boundaries > self.stop_after

    def statuses(self) -> dict[str, str]:
        return {e[1]: e[2] for e in self.events if e[0] == "finish"}

    def errors(self) -> dict[str, Any]:
        return {e[1]: e[4] for e in self.events if e[0] == "finish" and e[4]}


class FakeClient:
    """Same methods as shared.salesforce.client.SalesforceClient; records the calls."""

    def __init__(self, records: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.records = records or {}
        self.calls: list[tuple[Any, ...]] = []
        self.raise_on: dict[str, Exception] = {}

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.raise_on:
            raise self.raise_on[name]

    def query_result(self, soql: str, *, include_deleted: bool = False, limit: int | None = None):
        self._call("query_result", soql, include_deleted, limit)
        rows = list(self.records.get("Contact", []))[:limit]
        return {"totalSize": len(rows), "done": True, "records": rows}

    def create(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        self._call("create", sobject, fields)
        return {"id": f"{sobject[:3]}{len(self.calls):012d}", "success": True, "errors": []}

    def get(self, sobject: str, record_id: str, fields: list[str] | None = None):
        self._call("get", sobject, record_id, fields)
        return {"Id": record_id}

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        self._call("update", sobject, record_id, fields)

    def upsert(self, sobject: str, field: str, value: str, fields: dict[str, Any]):
        self._call("upsert", sobject, field, value, fields)
        return {"id": "x", "success": True, "errors": [], "created": True}

    def delete(self, sobject: str, record_id: str) -> None:
        self._call("delete", sobject, record_id)


def loaded(spec: dict[str, Any], **overrides: Any) -> LoadedBehavior:
    values: dict[str, Any] = dict(
        name=spec.get("name", "test"),
        version=1,
        definition=spec,
        function=None,
        inputs=spec.get("inputs") or {},
        account=spec.get("account"),
        max_attempts=None,
        timeout_seconds=None,
        description=None,
    )
    values.update(overrides)
    return LoadedBehavior(**values)


def context(
    behavior: LoadedBehavior,
    inputs: dict[str, Any] | None = None,
    recorder: RecordingRecorder | None = None,
    client: Any = None,
    *,
    client_for: ClientFactory | None = None,
    **extra: Any,
) -> ExecutionContext:
    """An ExecutionContext for run 1; `client_for` wins over `client` (default: a FakeClient)."""
    fake = client if client is not None else FakeClient()
    return ExecutionContext(
        run_id=1,
        attempt=1,
        inputs=inputs or {},
        behavior=behavior,
        recorder=recorder or RecordingRecorder(),
        client_for=client_for or (lambda account, on_exchange: fake),
        log=logging.getLogger("tests.behaviors"),
        **extra,
    )


def add_account(runtime: Any, name: str = "acme-prod") -> None:
    """Save an account that only has a name (no tokens): enough where names are checked."""
    with runtime.Session.begin() as session:
        service = Service(
            name=f"service-{name}",
            client_id="c",
            client_secret_enc=runtime.crypto.encrypt("x"),
            login_url="https://x",
        )
        session.add(service)
        session.flush()
        session.add(Account(service_id=service.id, name=name))


def behavior_counts(runtime: Any) -> tuple[int, int]:
    """(behaviors, behavior versions) stored."""
    with runtime.Session() as session:
        return (
            session.scalar(select(func.count()).select_from(Behavior)) or 0,
            session.scalar(select(func.count()).select_from(BehaviorVersion)) or 0,
        )
