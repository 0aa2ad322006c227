"""The kombu guard of worker/broker.py: Redis dies under a BRPOP, the worker's close survives.

The scenario is the one of the worker's log in the chaos drill R2′: two channels, each with
an unacked message and a BRPOP in flight, then Redis is killed, then Celery's consumer does
what it does on a connection error: `collect()` and then `close()` under `ignore_errors`.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCENARIO = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path

    from kombu import Connection, Queue
    from kombu.common import ignore_errors

    from forcebot.supervisor import embedded_redis_command, free_port, wait_for_port

    if sys.argv[2] == "guarded":
        from worker import broker

        broker.install()
    port = free_port()
    redis = subprocess.Popen(embedded_redis_command(Path(sys.argv[1]), port),
                             stdout=subprocess.DEVNULL)
    assert wait_for_port("127.0.0.1", port, 15)
    connection = Connection(f"redis://127.0.0.1:{port}/0")
    for name in ("tasks", "other"):
        channel = connection.default_channel if name == "tasks" else connection.channel()
        queue = Queue(name, channel=channel)
        queue.declare()
        connection.Producer(channel).publish({"n": 1}, routing_key=name)
        assert queue.get(no_ack=False) is not None  # delivered, not acked
        channel.basic_consume(name, no_ack=False, callback=lambda m: None, consumer_tag=name)
        client = channel.client
        client.connection = client.connection_pool.get_connection()
        channel._brpop_start(1)  # the event loop's BRPOP, waiting
    redis.kill()
    redis.wait()
    try:
        connection.collect(socket_timeout=1)
        ignore_errors(connection, connection.close)  # what Celery's consumer does
    except Exception as exc:
        print("RAISED", type(exc).__name__, exc)
        sys.exit(3)
    print("CLOSED")
    """
)


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"},
    )


def test_with_the_guard_a_redis_death_under_brpop_is_an_ignored_connection_error(tmp_path):
    result = _run(tmp_path, "guarded")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CLOSED" in result.stdout


def test_without_the_guard_kombu_still_crashes_there(tmp_path):
    # If this fails, kombu has fixed the bug: worker/broker.py can go.
    result = _run(tmp_path, "bare")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "RAISED AttributeError 'NoneType' object has no attribute 'hostname'" in result.stdout


def test_the_worker_app_installs_the_guard():
    from kombu.transport import redis as kombu_redis

    import worker.celery_app  # noqa: F401

    assert getattr(kombu_redis.Channel._connparams, "_forcebot_detached_guard", False)
