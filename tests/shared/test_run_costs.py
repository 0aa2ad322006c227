"""What one run costs the database: a one-step run in four short transactions once the
worker's caches are warm (claim, step start, step end with its exchange, finish)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, event, update

from shared import runs
from shared.behaviors.store import save_behavior
from shared.config import RunTimings
from shared.models import Account, Behavior, HttpExchange, RunStep
from tests.e2e.runs_support import LIMITS_BEHAVIOR

FAST = RunTimings(heartbeat_every=5, heartbeat_stale=30, queued_after=1, retry_base=0.1)


def _set_behavior(who: str) -> str:
    return f"""
name: cached
steps:
  - id: s
    action: set
    vars: {{who: "{who}"}}
result: "{{{{ vars.who }}}}"
"""


class Transactions:
    """Counts the transactions begun on the runtime's engine."""

    def __init__(self, runtime: Any) -> None:
        self.engine = runtime.engine
        self.count = 0
        event.listen(self.engine, "begin", self._begun)

    def _begun(self, _conn: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "begin", self._begun)


def _run(runtime: Any, behavior: str, worker: str = "w1") -> tuple[int, runs.Outcome]:
    with runtime.Session.begin() as session:
        run, _ = runs.create_run(session, behavior, {})
        run_id = run.id
    with runtime.Session.begin() as session:
        claim = runs.claim_for_execution(session, run_id, worker, timings=FAST)
    assert claim is not None
    return run_id, runs.execute_claimed(runtime, claim, timings=FAST)


def test_a_one_step_run_takes_four_transactions_with_warm_caches(runtime, sim, linked_account):
    linked_account()
    with runtime.Session.begin() as session:
        save_behavior(session, LIMITS_BEHAVIOR)
    _run(runtime, "record-limits")  # loads the behavior and the token, writes the API usage
    counter = Transactions(runtime)
    try:
        with runtime.Session.begin() as session:
            run, _ = runs.create_run(session, "record-limits", {})
            run_id = run.id
        created = counter.count
        with runtime.Session.begin() as session:
            claim = runs.claim_for_execution(session, run_id, "w1", timings=FAST)
        assert claim is not None
        outcome = runs.execute_claimed(runtime, claim, timings=FAST)
        worker_side = counter.count - created
    finally:
        counter.close()
    assert outcome.status == "succeeded" and outcome.result == 200
    # claim, step start, step end + exchange, finish; no reads (cancel, behavior, account)
    # and no API-usage write within the debounce interval.
    assert worker_side == 4
    with runtime.Session() as session:
        step = session.query(RunStep).filter_by(run_id=run_id).one()
        exchange = session.query(HttpExchange).filter_by(run_id=run_id).one()
    assert step.status == "succeeded" and exchange.step_id == step.id
    assert exchange.status == 200 and exchange.method == "GET"


def test_a_new_token_version_is_read_again(runtime, sim, linked_account):
    account_id = linked_account()
    with runtime.Session.begin() as session:
        save_behavior(session, LIMITS_BEHAVIOR)
    _run(runtime, "record-limits")
    with runtime.Session.begin() as session:
        session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(token_version=Account.token_version + 1)
        )
    counter = Transactions(runtime)
    try:
        _, outcome = _run(runtime, "record-limits")
    finally:
        counter.close()
    assert outcome.status == "succeeded"
    assert counter.count == 6  # create, claim, the account read, step start, step end, finish


def test_a_behavior_made_again_under_the_same_name_and_version_is_not_the_cached_one(runtime):
    with runtime.Session.begin() as session:
        _, version, _ = save_behavior(session, _set_behavior("first"))
        assert version.version == 1
    assert _run(runtime, "cached")[1].result == "first"
    with runtime.Session.begin() as session:
        session.execute(delete(Behavior).where(Behavior.name == "cached"))
    with runtime.Session.begin() as session:
        _, version, _ = save_behavior(session, _set_behavior("second"))
        assert version.version == 1
    assert _run(runtime, "cached")[1].result == "second"
