"""The command `up --demo` suggests can be pasted into any shell."""

import subprocess
import sys
from pathlib import Path

from forcebot.demo import runnable_command


def test_the_suggested_command_runs_without_an_activated_virtualenv(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the virtualenv's bin is not on it
    command = runnable_command()
    assert command == str(Path(sys.executable).parent / "forcebot")
    shown = subprocess.run(
        [command, "--help"], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin"}
    )
    assert shown.returncode == 0 and "trigger" in shown.stdout


def test_the_bare_name_when_it_is_on_path(monkeypatch):
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert runnable_command() == "forcebot"
