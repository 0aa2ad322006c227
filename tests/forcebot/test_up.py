"""`forcebot up` on the embedded default: real processes, real ports, nothing left behind."""

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from forcebot.supervisor import free_port
from tests.conftest import ROOT, poll


def _env(instance_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORCEBOT_")}
    env.update(FORCEBOT_INSTANCE_DIR=str(instance_dir), PYTHONPATH=str(ROOT), **extra)
    return env


def _start(tmp_path, *args, **env):
    port = free_port()
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "forcebot", "up", "--port", str(port), *args],
        env=_env(tmp_path / "instance", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return proc, port


def _descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _healthy(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_up_serves_and_ctrl_c_leaves_no_process(tmp_path):
    proc, port = _start(tmp_path)
    try:
        poll(lambda: _healthy(port), timeout=60, interval=0.2, message="/healthz")
        login = requests.get(f"http://127.0.0.1:{port}/login?next=/q-marker", timeout=5)
        assert login.status_code == 200 and "Log in to Forcebot" in login.text
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        # Wait for the worker and beat too, then remember every descendant.
        poll(lambda: len(_descendants(proc.pid)) >= 5, timeout=30, message="all children")
        children = _descendants(proc.pid)
        names = " ".join(" ".join(c.cmdline()) for c in children if c.is_running())
        for part in ("redis-server", "forcebot web", "forcebot worker", "forcebot beat"):
            assert part in names, part
        # Other commands on this instance find the embedded Redis through the marker file.
        marker = tmp_path / "instance" / "embedded-redis.url"
        assert marker.read_text().startswith("redis://127.0.0.1:")
        from shared.config import Settings

        assert (
            Settings.from_env(_env(tmp_path / "instance")).redis_url == marker.read_text().strip()
        )
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    output = (tmp_path / "up.log").read_text()
    assert "First admin: admin@localhost  password: " in output
    # The access log has paths without query strings (an OAuth code must never be logged).
    assert '"GET /login"' in output and "q-marker" not in output
    assert f"http://127.0.0.1:{port}" in output
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert not (tmp_path / "instance" / "embedded-redis.url").exists()
    # The password is printed on the first run only.
    proc2, port2 = _start(tmp_path)
    try:
        poll(lambda: _healthy(port2), timeout=60, interval=0.2, message="/healthz")
    finally:
        proc2.send_signal(signal.SIGTERM)
        proc2.wait(60)
    assert (tmp_path / "up.log").read_text().count("password: ") == 0


def _direct_child(proc, part):
    """The child of `up` whose command line holds `part` (its main process, not a pool child)."""
    try:
        children = psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return None
    for child in children:
        try:
            if part in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            pass
    return None


def test_a_dying_web_is_named_and_stops_the_rest(tmp_path):
    proc, port = _start(tmp_path)
    try:
        poll(lambda: _healthy(port), timeout=60, interval=0.2, message="/healthz")
        poll(lambda: _direct_child(proc, "forcebot beat"), timeout=30, message="beat")
        victim = _direct_child(proc, "forcebot web")
        children = _descendants(proc.pid)
        victim.kill()
        assert proc.wait(60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (
        "web exited with status -9; stopping the other processes"
        in (tmp_path / "up.log").read_text()
    )
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


NOOP = "name: noop\ninputs:\n  n: {type: integer, required: true}\nsteps:\n" + (
    '  - id: triple\n    action: set\n    vars: {x: "{{ inputs.n * 3 }}"}\nresult: "{{ vars.x }}"\n'
)


def test_a_killed_worker_is_restarted_while_web_keeps_serving(tmp_path):
    proc, port = _start(tmp_path)
    base = f"http://127.0.0.1:{port}"
    down: list[str] = []
    watching = threading.Event()
    try:
        poll(lambda: _healthy(port), timeout=60, interval=0.2, message="/healthz")
        worker = poll(
            lambda: _direct_child(proc, "forcebot worker --concurrency 2"),
            timeout=30,
            message="worker",
        )
        poll(lambda: _direct_child(proc, "forcebot beat"), timeout=30, message="beat")
        # beat's ticks have a worker of their own, so long runs cannot make them late
        poll(lambda: _direct_child(proc, "--queues forcebot.beat"), timeout=30, message="ticks")
        web = _direct_child(proc, "forcebot web")
        token = (
            subprocess.run(
                [sys.executable, "-m", "forcebot", "token", "create", "restart-test"],
                env=_env(tmp_path / "instance"),
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=60,
                check=True,
            )
            .stdout.strip()
            .split()[-1]
        )
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        created = api.post(f"{base}/api/v1/behaviors", json={"source": NOOP}, timeout=10)
        assert created.status_code in (200, 201), created.text

        def watch():
            while watching.is_set():
                if not _healthy(port):
                    down.append(time.strftime("%H:%M:%S"))
                time.sleep(0.1)

        watching.set()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        os.killpg(worker.pid, signal.SIGKILL)  # the whole worker (an OOM kill of the group)
        run_ids = []
        for n in range(10):  # queued while no worker is there
            queued = api.post(f"{base}/api/v1/behaviors/noop/runs", json={"payload": {"n": n}})
            assert queued.status_code == 202, queued.text
            run_ids.append(queued.json()["id"])

        new = poll(
            lambda: (
                (w := _direct_child(proc, "forcebot worker --concurrency 2"))
                and w.pid != worker.pid
                and w
            ),
            timeout=30,
            interval=0.2,
            message="a new worker",
        )

        def finished():
            runs = [api.get(f"{base}/api/v1/runs/{i}", timeout=10).json() for i in run_ids]
            return runs if all(r["status"] in ("succeeded", "failed") for r in runs) else None

        runs = poll(finished, timeout=120, interval=0.5, message="the queued runs")
        assert [r["status"] for r in runs] == ["succeeded"] * 10
        assert [r["result"] for r in runs] == [n * 3 for n in range(10)]

        ready = requests.get(f"{base}/readyz", timeout=5).json()
        assert ready["processes"]["worker"]["restarts"] == 1
        assert ready["processes"]["worker"]["pid"] == new.pid
        assert ready["processes"]["worker"]["last_exit_status"] == -9
        assert ready["processes"]["web"]["restarts"] == 0
        assert web.is_running() and _direct_child(proc, "forcebot web").pid == web.pid
    finally:
        watching.clear()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    assert down == []
    output = (tmp_path / "up.log").read_text()
    assert "worker exited with status -9; restarting in 1 s" in output
    assert "worker restarted (pid" in output


def test_bad_setting_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "forcebot", "up"],
        env=_env(tmp_path, FORCEBOT_DATABASE_URL="nonsense"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("forcebot: FORCEBOT_DATABASE_URL:")
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["worker"], ["web"], ["beat"]])
def test_processes_need_a_redis_url(tmp_path, command):
    result = subprocess.run(
        [sys.executable, "-m", "forcebot", *command],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "FORCEBOT_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_links_an_account_and_a_trigger_runs_end_to_end(tmp_path):
    proc, port = _start(tmp_path, "--demo")
    try:
        poll(lambda: _healthy(port), timeout=90, interval=0.2, message="/healthz")
        output = (tmp_path / "up.log").read_text()
        assert "Demo account 'demo' linked to the simulated org (admin@acme.sim" in output
        assert "find-contact-by-email, create-lead, create-case-for-email" in output
        # Another command on the instance reaches the embedded Redis and follows the run.
        result = subprocess.run(
            [sys.executable, "-m", "forcebot", "trigger", "find-contact-by-email"]
            + ["--payload", '{"email": "ada@acme.example"}', "--wait"],
            env=_env(tmp_path / "instance"),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Lovelace" in result.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


def test_malformed_run_timing_fails_at_start_up(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "forcebot", "db", "upgrade"],
        env=_env(tmp_path, FORCEBOT_RUN_RETRY_BASE_SECONDS="soon"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "forcebot: FORCEBOT_RUN_RETRY_BASE_SECONDS: expected a number of seconds (got 'soon')"
    )


@pytest.mark.parametrize("command", [["worker"], ["web"]])
def test_unimportable_behavior_module_fails_at_start_up(tmp_path, command):
    result = subprocess.run(
        [sys.executable, "-m", "forcebot", *command],
        env=_env(
            tmp_path,
            FORCEBOT_REDIS_URL="redis://127.0.0.1:6379/0",
            FORCEBOT_BEHAVIOR_MODULES="no_such_behaviors_module",
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "forcebot: FORCEBOT_BEHAVIOR_MODULES: cannot import no_such_behaviors_module"
    )
    assert "Traceback" not in result.stderr
