"""Run one attempt of a behavior: steps in order, `when:`, `foreach`, `result:`.

The runs engine owns the rows; it hands us a `StepRecorder`. Within one attempt a step that
already finished is not executed again: its stored output is reused.

What a resumed attempt (after a worker crash, or a retry of a transient fault) does with a
step that had started but not finished depends on whether sending it twice is harmless:

- Idempotent calls (`salesforce.query`, `get`, `update`, `upsert`, `delete`, a composite
  update or delete, and `http.request` with any method but POST) are simply sent again.
- Non-idempotent calls (`salesforce.create`, a `salesforce.composite` with `operation: create`,
  `http.request` with POST, with or without an account) are marked as sent (`mark_sent`,
  committed) before the request goes out. A resumed step that finds the mark and no recorded
  ending reuses the recorded response when it is a 2xx, sends again when the recorded answer
  was an error (4xx/5xx: nothing was applied), and otherwise fails with `outcome_unknown`
  without sending: the request may or may not have been applied, and a person must check
  before pressing Retry (which sends it again in a new attempt).
- A non-idempotent request that went out and got no complete answer (a read timeout, a
  connection closed or reset after sending: `errors.ResponseLost`) fails its step as
  `outcome_unknown` at once; it is not retried, in-process or by the runs engine. A connect
  error or connect timeout (nothing was sent) and a 5xx or 429 answer stay retryable.
- A Python behavior's function is one step (`python`); a resumed or retried attempt calls it
  again from the start. Its non-idempotent calls (`ctx.salesforce().create(...)`,
  `.composite(...)`, `.request("POST", ...)` and `ctx.http.request("POST", ...)`) go through
  a journal: each is a step row keyed `python:call-<n>`, numbered in call order, marked sent
  before sending and finished with its result. On the next call of the function the n-th
  such call returns the recorded result without sending (a recorded call of another kind or
  target fails the run as `replay_mismatch`), a call marked sent with no recorded response
  raises `outcome_unknown`, and a recorded error is sent again. Idempotent calls are simply
  sent. So the function must make its non-idempotent calls in the same order with the same
  targets each time it runs for the same inputs (decide them from inputs and from what
  earlier calls returned, not from the clock or randomness). Once a call is
  `outcome_unknown` the function cannot recover it: catching the error does not help, the
  step fails with it.

At every step boundary the engine checks for cancellation and the run-time deadline
(`timeout_seconds`, default 15 minutes; the runs engine passes `ExecutionContext.deadline`
measured from the attempt's start or its latest retry/quota wait, so a worker crash and
resumption does not restart the clock).

Errors: a `fail` step, a template error at run time, a non-retryable Salesforce error or a
limit raise `StepFailed`. Retryable Salesforce errors, DailyLimitExceeded,
QuotaReserveReached, NeedsReauth, ClaimLost and failures of our own infrastructure (Redis, the
database) propagate unchanged, after the step is recorded as failed, so that the runs engine
decides between retrying, waiting and failing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import redis.exceptions
import requests
import requests.structures
import sqlalchemy.exc
from jinja2 import TemplateError
from jinja2.sandbox import SecurityError

from shared.salesforce import errors
from shared.salesforce.http import StopSending
from shared.salesforce.redact import redact_url

from . import templates
from .actions import (
    CLIENT_ACTIONS,
    ActionError,
    GuardedHttp,
    composite_creates,
    is_no_account,
    outbound_request,
)
from .store import LoadedBehavior

if TYPE_CHECKING:
    from shared.salesforce.client import SalesforceClient

__all__ = [
    "Cancelled",
    "ClaimLost",
    "ExecutionContext",
    "PythonContext",
    "StepFailed",
    "StepRecorder",
    "execute",
]

DEFAULT_TIMEOUT_SECONDS = 900.0  # a run's time limit when the behavior sets none
MAX_ITERATIONS = 1000  # foreach items per loop, unless the step's max_iterations is lower
PYTHON_STEP = "python"
SENDS_ONCE_ACTIONS = (
    "salesforce.create",
    "salesforce.composite",
    "http.request",
)  # may be non-idempotent


class StepRecorder(Protocol):
    def completed(self, key: str) -> tuple[bool, Any]: ...
    def start(self, key: str, action: str) -> None: ...
    def finish(
        self, key: str, status: str, output: Any = None, error: dict[str, Any] | None = None
    ) -> None: ...
    def exchange(self, key: str, summary: dict[str, Any]) -> None: ...
    def should_stop(self) -> bool: ...
    def mark_sent(self, key: str) -> None: ...
    def unfinished_send(self, key: str) -> PriorSend | None: ...


@dataclass
class PriorSend:
    """A non-idempotent request of this step was marked sent, and its step never ended.

    `status`, `headers` and `body` are the last recorded REST response after the mark (None
    when no response was recorded: the worker died with the request in flight).
    """

    status: int | None = None
    headers: dict[str, Any] | None = None
    body: str | None = None


def sends_once(action: str, params: dict[str, Any]) -> bool:
    """Whether sending this step's request twice could apply it twice (see the docstring)."""
    if action == "salesforce.create":
        return True
    if action == "salesforce.composite":
        return composite_creates(params)
    return action == "http.request" and str(params.get("method") or "GET").upper() == "POST"


ClientFactory = Callable[[str | None, Callable[[dict[str, Any]], None] | None], "SalesforceClient"]


@dataclass
class ExecutionContext:
    run_id: int
    attempt: int
    inputs: dict[str, Any]
    behavior: LoadedBehavior
    recorder: StepRecorder
    client_for: ClientFactory
    log: logging.LoggerAdapter[Any] | logging.Logger
    deadline: float | None = None
    run_info: dict[str, Any] = field(default_factory=dict)
    # builds the shared.outbound client for `account: none` and ctx.http (given on_exchange)
    outbound_for: Callable[[Callable[[dict[str, Any]], None]], Any] | None = None


class StepFailed(Exception):
    """The run fails (not retried); `.error` is `{"code", "message", "step", ...}`."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", "step failed"))
        self.error = error


class Cancelled(Exception):
    """A cancel was requested; raised at the next step boundary."""


class ClaimLost(StopSending):
    """The recorder refused a write: another worker owns the run now (we were judged dead).

    Raised by the recorder and passed through untouched: this execution stops at once and
    records nothing more, so that only the new owner's steps count.
    """


# Errors in rendering a template at run time (Jinja's, and Python's from inside an expression).
TEMPLATE_ERRORS = (TemplateError, ArithmeticError, TypeError, ValueError)


# Our own infrastructure failing (Redis for the refresh lock and the concurrency cap, the
# database for the recorder): nothing is wrong with the run, so the runs engine retries it
# with back-off instead of failing it as an internal error.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,
)
INFRASTRUCTURE_ERROR = "infrastructure_error"


def infrastructure_message(exc: BaseException) -> str:
    """The driver's first line only: SQLAlchemy's text would quote the statement's parameters."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {(detail[0] if detail else '')[:200]}"


def _propagates(exc: Exception) -> bool:
    """Whether the runs engine, not us, must decide what an error means."""
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return True
    if not isinstance(exc, errors.SalesforceError):
        return False
    if isinstance(exc, errors.DailyLimitExceeded | errors.QuotaReserveReached | errors.NeedsReauth):
        return True
    return bool(getattr(exc, "retryable", False))


def _template_failed(exc: Exception, path: str, key: str) -> StepFailed:
    # SecurityError is a TemplateError: the sandbox refused an access or an operation.
    code = "template_refused" if isinstance(exc, SecurityError) else "template_error"
    return StepFailed({"code": code, "message": f"{path}: {exc}", "step": key})


def _what(action: str, params: dict[str, Any]) -> str:
    if action == "http.request":
        return "POST"
    return f"{params.get('sobject') or ''} create".strip()


def outcome_unknown(key: str, what: str, why: str, outbound: bool = False) -> StepFailed:
    """A non-idempotent request went out and we cannot tell whether it was applied."""
    where = (
        "at the service it was sent to whether it was"
        if outbound
        else "in Salesforce whether it was (e.g. look for the record this step creates)"
    )
    return StepFailed(
        {
            "code": "outcome_unknown",
            "message": (
                f"this step's {what} was sent and {why}, so it may or may not have been "
                f"applied; check {where} before pressing Retry, which sends it again"
            ),
            "step": key,
        }
    )


def _recorded_body(prior: PriorSend) -> Any:
    try:
        return json.loads(prior.body or "")
    except ValueError:
        return prior.body


class _Execution:
    def __init__(self, ctx: ExecutionContext) -> None:
        self.ctx = ctx
        self.recorder = ctx.recorder
        timeout = ctx.behavior.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
        own_deadline = time.monotonic() + float(timeout)
        self.deadline = min(ctx.deadline, own_deadline) if ctx.deadline else own_deadline
        self.clients: dict[str | None, SalesforceClient] = {}
        self._outbound: Any = None
        self.current_key = ""
        self.prior_sends: dict[str, PriorSend | None] = {}
        self.vars: dict[str, Any] = {}
        self.inputs = templates.typed_inputs(ctx.behavior.inputs, ctx.inputs)
        self.journal = Journal(self)  # a Python behavior's non-idempotent calls

    # ----------------------------------------------------------------- plumbing

    def client(self, account: str | None) -> SalesforceClient:
        if account not in self.clients:
            try:
                self.clients[account] = self.ctx.client_for(account, self._on_exchange)
            except LookupError as exc:
                raise ActionError("unknown_account", f"account: {exc}") from None
        return self.clients[account]

    def outbound(self) -> Any:
        if self.ctx.outbound_for is None:
            raise ActionError("outbound_unavailable", "outbound HTTP is not configured here")
        if self._outbound is None:  # one per attempt: it reads the stored secrets once
            self._outbound = self.ctx.outbound_for(self._on_exchange)
        return self._outbound

    def _on_exchange(self, summary: dict[str, Any]) -> None:
        # `http.send` keeps a failure here from replacing the response it describes.
        self.recorder.exchange(self.current_key, summary)

    def boundary(self, key: str) -> None:
        if self.recorder.should_stop():
            raise Cancelled(f"cancelled before step {key}")
        if time.monotonic() > self.deadline:
            raise StepFailed(
                {"code": "timeout", "message": "the run's time limit was reached", "step": key}
            )

    def context(self, steps: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "steps": steps,
            "vars": self.vars,
            "run": self.ctx.run_info,
            **extra,
        }

    def render(self, value: Any, path: str, context: dict[str, Any], key: str) -> Any:
        try:
            return templates.render_value(value, context)
        except TEMPLATE_ERRORS as exc:
            raise _template_failed(exc, path, key) from None

    # ----------------------------------------------------------------- steps

    def run_steps(
        self, steps: list[dict[str, Any]], prefix: str, outputs: dict[str, Any], extra: dict
    ) -> None:
        for step in steps:
            step_id = step["id"]
            key = f"{prefix}{step_id}"
            self.boundary(key)
            done, output = self.recorder.completed(key)
            if done:
                outputs[step_id] = output
                if step["action"] == "set" and isinstance(output, dict):
                    self.vars.update(output)
                continue
            outputs[step_id] = self.run_step(step, key, outputs, extra)

    def run_step(self, step: dict[str, Any], key: str, outputs: dict[str, Any], extra: dict) -> Any:
        action = step["action"]
        self.current_key = key
        if action in SENDS_ONCE_ACTIONS:  # read before `start` marks the step running again
            self.prior_sends[key] = self.recorder.unfinished_send(key)
        self.recorder.start(key, action)
        context = self.context(outputs, extra)
        try:
            if "when" in step:
                try:
                    go = templates.is_true(step["when"], context)
                except TEMPLATE_ERRORS as exc:
                    raise _template_failed(exc, "when", key) from None
                if not go:
                    self.recorder.finish(key, "skipped")
                    self.ctx.log.info("step=%s status=skipped", key)
                    return None
            output = self.perform(step, key, outputs, extra, context)
        except ClaimLost:
            raise
        except StepFailed as exc:
            self.recorder.finish(key, "failed", error=exc.error)
            raise
        except Cancelled:
            self.recorder.finish(key, "failed", error={"code": "cancelled", "message": "cancelled"})
            raise
        except Exception as exc:
            error = self.describe(exc, key)
            self.recorder.finish(key, "failed", error=error)
            if error["code"] == "internal_error" or _propagates(exc):
                raise
            raise StepFailed(error) from exc
        self.current_key = key
        self.recorder.finish(key, "succeeded", output=output)
        self.ctx.log.info("step=%s status=succeeded", key)
        return output

    def describe(self, exc: Exception, key: str) -> dict[str, Any]:
        if isinstance(exc, errors.SalesforceError):
            return {**exc.to_dict(), "step": key}
        if isinstance(exc, ActionError):
            return {"code": exc.code, "message": exc.message, "step": key}
        if isinstance(exc, INFRASTRUCTURE_ERRORS):
            return {
                "code": INFRASTRUCTURE_ERROR,
                "message": infrastructure_message(exc),
                "step": key,
            }
        return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "step": key}

    def params(self, step: dict[str, Any], key: str, context: dict[str, Any]) -> dict[str, Any]:
        skip = {"id", "action", "when", "steps", "description"}
        return {
            name: self.render(value, name, context, key)
            for name, value in step.items()
            if name not in skip
        }

    def perform(
        self,
        step: dict[str, Any],
        key: str,
        outputs: dict[str, Any],
        extra: dict,
        context: dict[str, Any],
    ) -> Any:
        action = step["action"]
        if action == "foreach":
            return self.foreach(step, key, outputs, extra, context)
        params = self.params(step, key, context)
        if action == "set":
            values = params.get("vars") or {}
            if not isinstance(values, dict):
                message = "vars: expected an object"
                raise StepFailed({"code": "invalid_parameter", "message": message, "step": key})
            self.vars.update(values)
            return values
        if action == "fail":
            raise StepFailed(
                {
                    "code": str(params.get("code") or "failed"),
                    "message": str(params.get("message")),
                    "step": key,
                }
            )
        account = params.pop("account", None)
        outbound = action == "http.request" and is_no_account(account or self.ctx.behavior.account)
        client = None if outbound else self.client(account if account else None)
        once = sends_once(action, params)
        if once:
            prior = self.prior_sends.pop(key, None)
            if prior is not None:
                reused = self.reuse(action, params, prior, key, outbound)
                if reused is not None:
                    return reused
            self.recorder.mark_sent(key)
        try:
            if outbound:
                return outbound_request(params, self.outbound(), sends_once=once)
            return CLIENT_ACTIONS[action](params, client)
        except errors.ResponseLost as exc:
            if not once:
                raise  # idempotent: retried like any transport error
            raise outcome_unknown(
                key, _what(action, params), f"no response came back ({exc.message})", outbound
            ) from exc

    def reuse(
        self, action: str, params: dict[str, Any], prior: PriorSend, key: str, outbound: bool
    ) -> dict[str, Any] | list[Any] | None:
        """The output of a non-idempotent request sent before a crash; None: send it again."""
        if prior.status is None:
            raise outcome_unknown(
                key,
                _what(action, params),
                "a worker stopped before its response was recorded",
                outbound,
            )
        if not 200 <= prior.status < 300:
            return None  # answered with an error: nothing was applied
        self.ctx.log.info("step=%s reusing the response recorded before a restart", key)
        body = _recorded_body(prior)
        if action == "salesforce.composite" and isinstance(body, list):
            return body  # [{id, success, errors}] as Salesforce answered
        if action == "salesforce.create":
            return dict(body) if isinstance(body, dict) else {"body": body}
        return {"status": prior.status, "headers": prior.headers or {}, "body": body}

    def foreach(
        self,
        step: dict[str, Any],
        key: str,
        outputs: dict[str, Any],
        extra: dict,
        context: dict[str, Any],
    ) -> list[dict[str, Any]]:
        items = self.render(step["items"], "items", context, key)
        if items is None:
            items = []
        if isinstance(items, dict):
            items = [{"key": k, "value": v} for k, v in items.items()]
        if not isinstance(items, list):
            raise StepFailed(
                {
                    "code": "invalid_parameter",
                    "message": f"items: expected a list, got {type(items).__name__}",
                    "step": key,
                }
            )
        limit = min(int(step.get("max_iterations") or MAX_ITERATIONS), MAX_ITERATIONS)
        if len(items) > limit:
            raise StepFailed(
                {
                    "code": "too_many_iterations",
                    "message": f"items: {len(items)} items; the limit is {limit}",
                    "step": key,
                }
            )
        results = []
        for index, item in enumerate(items):
            loop = {
                "index": index,
                "index1": index + 1,
                "first": index == 0,
                "last": index == len(items) - 1,
                "length": len(items),
            }
            inner_outputs = dict(outputs)
            scope = {**extra, "item": item, "loop": loop}
            self.run_steps(step["steps"], f"{key}[{index}].", inner_outputs, scope)
            results.append({s["id"]: inner_outputs.get(s["id"]) for s in step["steps"]})
        return results

    # ----------------------------------------------------------------- whole runs

    def run_definition(self) -> Any:
        definition = self.ctx.behavior.definition or {}
        outputs: dict[str, Any] = {}
        self.run_steps(definition.get("steps") or [], "", outputs, {})
        if "result" not in definition:
            return None
        try:
            return templates.render_value(definition["result"], self.context(outputs, {}))
        except TEMPLATE_ERRORS as exc:
            raise StepFailed({"code": "template_error", "message": f"result: {exc}"}) from None

    def run_python(self) -> Any:
        assert self.ctx.behavior.function is not None
        self.boundary(PYTHON_STEP)
        done, output = self.recorder.completed(PYTHON_STEP)
        if done:
            return output
        self.current_key = PYTHON_STEP
        self.recorder.start(PYTHON_STEP, "python")
        self.journal = journal = Journal(self)
        try:
            output = self.ctx.behavior.function(PythonContext(self))
            if journal.unknown is not None:  # caught by the function: the outcome stays unknown
                raise journal.unknown
        except ClaimLost:
            raise
        except Exception as exc:
            unknown = journal.unknown
            if unknown is not None:  # whatever the function did after that call
                self.recorder.finish(
                    PYTHON_STEP, "failed", error={**unknown.error, "step": PYTHON_STEP}
                )
                journal.close_unknown()
                if exc is unknown:
                    raise
                raise unknown from exc
            if isinstance(exc, StepFailed | Cancelled):
                error = exc.error if isinstance(exc, StepFailed) else {"code": "cancelled"}
                self.recorder.finish(PYTHON_STEP, "failed", error={**error, "step": PYTHON_STEP})
                raise
            error = self.describe(exc, PYTHON_STEP)
            if error["code"] == "internal_error":
                error["code"] = "python_error"
            self.recorder.finish(PYTHON_STEP, "failed", error=error)
            if _propagates(exc):
                raise
            raise StepFailed(error) from exc
        self.recorder.finish(PYTHON_STEP, "succeeded", output=output)
        return output


class Journal:
    """The non-idempotent calls of one run of a Python behavior's function, in call order.

    Call n is the step row `python:call-<n>`: marked sent before its request goes out and
    finished with `{"call": <signature>, "result": <what the call returned>}`. When the
    function is called again (a resumed or retried attempt) the n-th call is answered from
    that row (see the module docstring); the function must make these calls in the same order.
    """

    def __init__(self, execution: _Execution) -> None:
        self.execution = execution
        self.count = 0
        # Set when a call's outcome is unknown: the function's step fails with it, and no
        # further non-idempotent call is sent.
        self.unknown: StepFailed | None = None
        # Keys of such calls: left marked sent and unanswered (what a replay reads as
        # "unknown") until the function's step has recorded its failure.
        self._open: list[str] = []

    def call(
        self,
        action: str,
        target: str,
        send: Callable[[], Any],
        from_prior: Callable[[PriorSend], Any],
        *,
        encode: Callable[[Any], Any] = lambda value: value,
        decode: Callable[[Any], Any] = lambda value: value,
        outbound: bool = False,
    ) -> Any:
        if self.unknown is not None:
            raise self.unknown
        self.count += 1
        key = f"{PYTHON_STEP}:call-{self.count}"
        signature = f"{action} {target}"
        execution = self.execution
        recorder = execution.recorder
        done, output = recorder.completed(key)
        if done:
            recorded = output.get("call") if isinstance(output, dict) else None
            if recorded != signature:
                self.unknown = StepFailed(
                    {
                        "code": "replay_mismatch",
                        "message": (
                            f"the function's call {self.count} is {signature} now but was "
                            f"{recorded} when it first ran; a Python behavior must make its "
                            "creates and POSTs in the same order on every run for the same "
                            "inputs (its earlier results are replayed by position)"
                        ),
                        "step": key,
                    }
                )
                # Sticky like outcome_unknown: a function that catches it still fails, and no
                # later call is matched against the wrong recorded positions or sent.
                raise self.unknown
            execution.ctx.log.info("step=%s reusing the recorded result of %s", key, signature)
            return decode(output.get("result"))
        prior = recorder.unfinished_send(key)
        recorder.start(key, action)
        previous, execution.current_key = execution.current_key, key
        what = f"{target} create" if action == "salesforce.create" else signature
        try:
            status = prior.status if prior is not None else 0
            if prior is not None and status is None:
                raise outcome_unknown(
                    key, what, "a worker stopped before its response was recorded", outbound
                )
            if prior is not None and status is not None and 200 <= status < 300:
                execution.ctx.log.info("step=%s reusing the response recorded earlier", key)
                value = from_prior(prior)
            else:
                recorder.mark_sent(key)
                try:
                    value = send()
                except errors.ResponseLost as exc:
                    why = f"no response came back ({exc.message})"
                    raise outcome_unknown(key, what, why, outbound) from exc
        except ClaimLost:
            raise
        except StepFailed as exc:
            if exc.error.get("code") == "outcome_unknown":
                self.unknown = exc
                self._open.append(key)
            else:
                recorder.finish(key, "failed", error=exc.error)
            raise
        except Exception as exc:
            recorder.finish(key, "failed", error=execution.describe(exc, key))
            raise
        finally:
            execution.current_key = previous
        recorder.finish(key, "succeeded", output={"call": signature, "result": encode(value)})
        return value

    def close_unknown(self) -> None:
        """Record the unknown calls' failure, once the function's own failure is recorded."""
        error = self.unknown.error if self.unknown is not None else None
        for key in self._open:
            self.execution.recorder.finish(key, "failed", error=error)
        self._open = []


def _create_from_prior(prior: PriorSend) -> dict[str, Any]:
    body = _recorded_body(prior)
    body = body if isinstance(body, dict) else {}
    return {
        "id": body.get("id"),
        "success": body.get("success", True),
        "errors": body.get("errors", []),
    }


def _list_from_prior(prior: PriorSend) -> list[Any]:
    body = _recorded_body(prior)
    return list(body) if isinstance(body, list) else []


def _response_out(response: requests.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": response.text,
        "url": response.url,
    }


def _response_in(recorded: dict[str, Any]) -> requests.Response:
    """A requests.Response rebuilt from a recorded call (status, headers, text body)."""
    response = requests.Response()
    response.status_code = int(recorded.get("status") or 0)
    response.headers = requests.structures.CaseInsensitiveDict(recorded.get("headers") or {})
    response._content = str(recorded.get("body") or "").encode("utf-8")
    response.encoding = "utf-8"
    response.url = str(recorded.get("url") or "")
    return response


def _response_from_prior(prior: PriorSend) -> requests.Response:
    return _response_in({"status": prior.status, "headers": prior.headers, "body": prior.body})


class JournaledClient:
    """What `ctx.salesforce()` returns: the account's SalesforceClient, whose `create`,
    `composite` and `request("POST", ...)` go through the function's `Journal`. Every other
    method and attribute is the client's own (idempotent calls are simply sent)."""

    def __init__(self, client: SalesforceClient, journal: Journal) -> None:
        self._client = client
        self._journal = journal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def create(self, sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self._journal.call(
                "salesforce.create",
                str(sobject),
                lambda: self._client.create(sobject, fields),
                _create_from_prior,
            )
        )

    def composite(
        self, records: list[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        return list(
            self._journal.call(
                "salesforce.composite",
                "create",
                lambda: self._client.composite(records, all_or_none=all_or_none),
                _list_from_prior,
            )
        )

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if str(method).upper() != "POST":
            return self._client.request(method, url, **kwargs)
        response: requests.Response = self._journal.call(
            "salesforce.request",
            f"POST {redact_url(url)}",
            lambda: self._client.request(method, url, **kwargs),
            _response_from_prior,
            encode=_response_out,
            decode=_response_in,
        )
        return response


class JournaledHttp:
    """What `ctx.http` is: `GuardedHttp`, whose POSTs go through the function's `Journal` (and
    are not resent in-process once they went out unanswered)."""

    def __init__(self, http: GuardedHttp, journal: Journal) -> None:
        self._http = http
        self._journal = journal

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """`OutboundClient.request`: params, headers, json, data, timeout, follow_redirects."""
        if str(method).upper() != "POST":
            return self._http.request(method, url, **kwargs)
        kwargs["resend_unanswered"] = False
        response: requests.Response = self._journal.call(
            "http.request",
            f"POST {redact_url(url)}",
            lambda: self._http.request(method, url, **kwargs),
            _response_from_prior,
            encode=_response_out,
            decode=_response_in,
            outbound=True,
        )
        return response


class PythonContext:
    """What a Python behavior's function receives as `ctx`."""

    def __init__(self, execution: _Execution) -> None:
        self._execution = execution
        self.inputs: dict[str, Any] = execution.inputs
        self.log = execution.ctx.log
        self.run: dict[str, Any] = execution.ctx.run_info

    def salesforce(self, account: str | None = None) -> SalesforceClient:
        """A client for `account` (default: the behavior's account); exchanges are recorded.

        Its creates, composite creates and POSTs are journaled (see `Journal`)."""
        journaled = JournaledClient(self._execution.client(account), self._execution.journal)
        return cast("SalesforceClient", journaled)

    @property
    def http(self) -> Any:
        """Outbound HTTP (`.request(method, url, ...)`): any URL the SSRF guard allows, never a
        Salesforce credential; a refusal fails the run with code outbound_refused. POSTs are
        journaled (see `Journal`)."""
        return JournaledHttp(GuardedHttp(self._execution.outbound()), self._execution.journal)

    def should_stop(self) -> bool:
        """True when a cancel was requested: long loops should return early."""
        return self._execution.recorder.should_stop()

    def fail(self, message: str, code: str = "failed") -> None:
        """Fail the run now, without retries."""
        raise StepFailed({"code": code, "message": message, "step": PYTHON_STEP})


def execute(ctx: ExecutionContext) -> Any:
    """Run one attempt; return the rendered `result` (or the Python function's return value)."""
    execution = _Execution(ctx)
    if ctx.behavior.function is not None:
        return execution.run_python()
    return execution.run_definition()
