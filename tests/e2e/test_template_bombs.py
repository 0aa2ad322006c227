"""Template bombs through a real worker: the step fails at a limit at once, memory stays low."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import psutil

from tests.e2e.runs_support import save, trigger, wait_status

BOMBS = {
    "center": "{{ 'x'|center(50000000) }}",
    "percent": "{{ '%50000000d' % 1 }}",
    "loops": "{% for i in range(5000) %}{% for j in range(5000) %}{% endfor %}{% endfor %}done",
    "power": "{{ ((10 ** 100) ** 100) ** 100 }}",
}


def _behavior(name: str, template: str) -> str:
    return (
        f"name: bomb-{name}\n"
        "steps:\n"
        "  - id: boom\n"
        "    action: set\n"
        f"    vars: {{x: {json.dumps(template)}}}\n"
    )


def _peak_rss(pid: int) -> int:
    """The high-water mark (VmHWM) of the process and each of its children, the largest."""
    peaks = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        peaks.append(int(line.split()[1]) * 1024)
    return max(peaks)


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_template_bombs_fail_at_a_limit_within_a_second_in_the_worker(runtime, worker):
    for name, template in BOMBS.items():
        save(runtime, _behavior(name, template))
    run_ids = {name: trigger(runtime, f"bomb-{name}", {}) for name in BOMBS}

    for name, run_id in run_ids.items():
        run = wait_status(runtime, run_id, ("failed", "succeeded"), timeout=60)
        assert run["status"] == "failed", (name, run)
        [step] = run["steps"]
        assert step["status"] == "failed"
        assert step["error"]["code"] == "template_refused", (name, step["error"])
        assert "template limit" in step["error"]["message"]
        assert _seconds(step["started_at"], step["finished_at"]) < 1.0, (name, step)
    assert worker.process is not None
    assert _peak_rss(worker.process.pid) < 300 * 1024 * 1024
