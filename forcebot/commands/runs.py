"""`forcebot trigger` and `forcebot runs retry|cancel`: queue runs and follow them."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from forcebot.cli import checked_database, cli, fail, load_settings, require_redis


def _setup(command: str) -> Any:
    from shared.runtime import Runtime
    from worker.celery_app import configure

    settings = load_settings()
    require_redis(settings, command)
    checked_database(settings)
    from forcebot.cli import _load_behavior_modules

    _load_behavior_modules(settings)
    runtime = Runtime(settings)
    configure(settings, runtime)
    return settings, runtime


def _status_line(data: dict[str, Any]) -> str:
    parts = [f"run {data['id']}", data["status"], f"attempt {data['attempts']}"]
    if data.get("current_step"):
        parts.append(f"step {data['current_step']}")
    if data["status"] in ("retrying", "waiting") and data.get("next_attempt_at"):
        parts.append(f"resumes {data['next_attempt_at']}")
        if data.get("wait_reason"):
            parts.append(str(data["wait_reason"]))
    return " · ".join(parts)


def _follow(runtime: Any, run_id: int, interval: float = 0.5) -> int:
    """Print a live status line until the run ends; 0 when it succeeded, else 1."""
    from shared.models import Run
    from shared.runs import FINISHED, run_to_dict

    live = sys.stderr.isatty()
    last = ""
    while True:
        with runtime.Session() as session:
            run = session.get(Run, run_id)
            if run is None:
                fail(f"run {run_id} disappeared", status=1)
            data = run_to_dict(run, include_steps=False)
        line = _status_line(data)
        if line != last:
            if live:
                click.echo("\r\033[K" + line, nl=False, err=True)
            else:
                click.echo(line, err=True)
            last = line
        if data["status"] in FINISHED:
            if live:
                click.echo("", err=True)
            break
        time.sleep(interval)
    if data["status"] == "succeeded":
        click.echo(json.dumps(data["result"]))
        return 0
    error = data.get("error") or {}
    click.echo(
        f"run {run_id} {data['status']}: {error.get('code')}: {error.get('message')}", err=True
    )
    return 1


@cli.command()
@click.argument("behavior")
@click.option("--payload", default="{}", help="The payload as a JSON object.")
@click.option("--idempotency-key", default=None, help="Return the first run for a repeated key.")
@click.option("--wait", is_flag=True, help="Follow the run to the end (exit 1 unless it succeeds).")
def trigger(behavior: str, payload: str, idempotency_key: str | None, wait: bool) -> None:
    """Queue a run of BEHAVIOR."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        fail(f"--payload: not valid JSON ({exc})")
    if not isinstance(data, dict):
        fail("--payload: expected a JSON object")
    settings, runtime = _setup("trigger")
    from shared.runs import BehaviorNotFound, PayloadInvalid, create_run
    from worker.tasks.runs import enqueue

    try:
        with runtime.Session.begin() as session:
            run, created = create_run(
                session,
                behavior,
                data,
                trigger="cli",
                idempotency_key=idempotency_key,
                default_max_attempts=settings.run_max_attempts,
            )
            run_id = run.id
    except PayloadInvalid as exc:
        fail("the payload was rejected:\n  " + "\n  ".join(exc.problems))
    except BehaviorNotFound:
        fail(f"no behavior named {behavior!r}")
    if created:
        enqueue(run_id)
    click.echo(f"run {run_id} {'queued' if created else 'exists (same idempotency key)'}")
    if wait:
        raise SystemExit(_follow(runtime, run_id))


@cli.group("runs")
def runs_group() -> None:
    """Retry or cancel runs."""


@runs_group.command("retry")
@click.argument("run_id", type=int)
@click.option("--wait", is_flag=True, help="Follow the run to the end.")
def runs_retry(run_id: int, wait: bool) -> None:
    """Queue a failed or cancelled run again (same payload, new attempt)."""
    _, runtime = _setup("runs retry")
    from shared.runs import RunStateError, retry_run
    from worker.tasks.runs import enqueue

    try:
        with runtime.Session.begin() as session:
            retry_run(session, run_id)
    except LookupError:
        fail(f"run {run_id} not found")
    except RunStateError as exc:
        fail(str(exc))
    enqueue(run_id)
    click.echo(f"run {run_id} queued")
    if wait:
        raise SystemExit(_follow(runtime, run_id))


@runs_group.command("cancel")
@click.argument("run_id", type=int)
def runs_cancel(run_id: int) -> None:
    """Cancel a queued or waiting run, or stop a running one at its next step."""
    _, runtime = _setup("runs cancel")
    from shared.runs import RunStateError, cancel_run

    try:
        with runtime.Session.begin() as session:
            status = cancel_run(session, run_id).status
    except LookupError:
        fail(f"run {run_id} not found")
    except RunStateError as exc:
        fail(str(exc))
    click.echo(f"run {run_id} {'stops at its next step' if status == 'running' else status}")
