"""A create or POST that went out and got no answer is never sent again by the engine.

Real worker processes and the simulator over HTTP. The simulator's stall fault holds the Case
create past the client's timeout and then applies it: the run must fail as outcome_unknown
with exactly one Case (it used to retry and create a second). An `http.request` POST with
`account: none` to a loopback endpoint that answers too late is sent once (the outbound
client used to resend it in-process, then the run retried it). Retry, a person's choice after
checking, sends again in a new attempt.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared import runs
from tests.conftest import ROOT, poll

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    no_default_worker_fixture,
    run_dict,
    save,
    trigger,
    wait_status,
)
from .test_runs_durability import CASE_BEHAVIOR

# Loaded by the worker only: the Salesforce client's timeout is cut from 30 s to 1.5 s so a
# 4 s stall times the create out quickly.
SHORT_TIMEOUT_MODULE = "fb_test_short_sf_timeout"
SHORT_TIMEOUT = """
from shared.salesforce.client import SalesforceClient

SalesforceClient.__init__.__kwdefaults__["timeout"] = 1.5
"""
STALL = 4.0
CASE_PATH = "/services/data/v62.0/sobjects/Case"


def _case_posts(sim: Any) -> int:
    return sum(
        1 for e in sim.control.log() if e["method"] == "POST" and e["path"].startswith(CASE_PATH)
    )


def _cases(sim: Any, subject: str) -> list[dict[str, Any]]:
    return [c for c in sim.control.records("Case") if c.get("Subject") == subject]


def test_a_create_that_timed_out_after_salesforce_applied_it_is_outcome_unknown(
    runtime, sim, linked_account, no_default_worker, worker_factory, tmp_path
):
    (tmp_path / f"{SHORT_TIMEOUT_MODULE}.py").write_text(textwrap.dedent(SHORT_TIMEOUT))
    linked_account()
    save(runtime, CASE_BEHAVIOR)
    worker_factory(
        FORCEBOT_BEHAVIOR_MODULES=SHORT_TIMEOUT_MODULE,
        PYTHONPATH=f"{ROOT}:{tmp_path}",
        **FAST_ENV,
    )
    sim.control.add_fault(CASE_PATH, count=1, status=None, delay_seconds=STALL)
    subject = "Stalled create"
    run_id = trigger(runtime, "open-case", {"subject": subject})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)

    # The stalled request is applied once the stall ends, after our client gave up on it.
    poll(lambda: _cases(sim, subject), timeout=STALL + 10, message="the stalled create")
    assert data["status"] == "failed", data
    assert data["error"]["code"] == "outcome_unknown" and data["error"]["step"] == "case"
    assert "no response came back" in data["error"]["message"]
    assert "check in Salesforce" in data["error"]["message"]
    assert data["retries"] == 0 and data["attempts"] == 1
    step = data["steps"][0]
    assert (step["id"], step["status"]) == ("case", "failed")
    assert len(_cases(sim, subject)) == 1 and _case_posts(sim) == 1

    # Retry is the person's explicit choice: it sends the create again, in a new attempt.
    with runtime.Session.begin() as session:
        runs.retry_run(session, run_id)
    from worker.tasks.runs import enqueue

    enqueue(run_id)
    again = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert again["status"] == "succeeded", again
    assert again["attempts"] == 2 and len(_cases(sim, subject)) == 2


class _LateReceiver:
    """A loopback endpoint that reads each POST, counts it, and answers only after `delay`."""

    def __init__(self, delay: float) -> None:
        self.posts = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.posts += 1
                outer.release.wait(delay)
                try:
                    self.send_response(201)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the client gave up long ago

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def late_receiver() -> Iterator[_LateReceiver]:
    receiver = _LateReceiver(delay=5.0)
    yield receiver
    receiver.close()


def test_an_outbound_post_without_an_answer_is_sent_once(
    runtime, no_default_worker, worker_factory, late_receiver
):
    save(
        runtime,
        f"""
name: notify-late
steps:
  - id: notify
    action: http.request
    account: none
    method: POST
    url: {late_receiver.url}
    timeout: 1
    json: {{text: hello}}
""",
    )
    worker_factory(FORCEBOT_HTTP_ALLOW_HOSTS="127.0.0.1", **FAST_ENV)
    run_id = trigger(runtime, "notify-late", {})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "failed", data
    assert data["error"]["code"] == "outcome_unknown" and data["error"]["step"] == "notify"
    assert "at the service it was sent to" in data["error"]["message"]
    assert late_receiver.posts == 1
    assert run_dict(runtime, run_id)["retries"] == 0
