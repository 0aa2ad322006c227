"""The supervisor's restart policy on real child processes."""

from __future__ import annotations

import json
import signal
import sys

import pytest

from forcebot.supervisor import Child, Supervisor


@pytest.fixture(autouse=True)
def _keep_signal_handlers():
    """The supervisor owns its process's signals (it ignores SIGINT once stopping); give the
    test process its own back, or every later child would inherit an ignored SIGINT."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_child_that_keeps_dying_is_given_up_after_max_deaths(tmp_path):
    lines: list[str] = []
    status = tmp_path / "status.json"
    supervisor = Supervisor(lines.append, status_path=status, backoff=0.05)
    snapshots: list[dict] = []
    original = supervisor.write_status

    def write_status() -> None:
        original()
        snapshots.append(json.loads(status.read_text()))

    supervisor.write_status = write_status  # type: ignore[method-assign]
    supervisor.add(Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"], restart=True))
    supervisor.add(Child("steady", [sys.executable, "-c", "import time; time.sleep(60)"]))

    assert supervisor.run() == 1

    restarting = [line for line in lines if "restarting in" in line]
    assert [line.split("restarting in ")[1].split(" s")[0] for line in restarting] == [
        "0.05",
        "0.1",
        "0.2",
        "0.4",
    ]
    assert "flaky exited with status 3, 5 times in 60 s; it keeps dying" in lines[-2]
    assert lines[-1] == "forcebot: stopped"
    flaky = snapshots[-1]["processes"]["flaky"]
    assert flaky["restarts"] == 4 and flaky["last_exit_status"] == 3
    assert snapshots[-1]["processes"]["steady"]["restarts"] == 0
    assert not status.exists()  # removed when everything stopped
    steady = supervisor.children[1].process
    assert steady is not None and steady.poll() is not None
