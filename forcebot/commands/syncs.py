"""`forcebot sync run SYNC [--full] [--wait]` and `forcebot syncs`."""

from __future__ import annotations

import time
from typing import Any

import click

from forcebot.cli import cli, fail
from forcebot.commands.runs import _setup


def _find(session: Any, ref: str) -> Any:
    """A sync by id or by name."""
    from sqlalchemy import select

    from shared.models import Sync

    if ref.isascii() and ref.isdigit():
        sync = session.get(Sync, int(ref))
    else:
        sync = session.scalars(select(Sync).where(Sync.name == ref)).one_or_none()
    if sync is None:
        fail(f"no sync {ref!r}")
    return sync


@cli.group("sync")
def sync_group() -> None:
    """Run a sync now."""


@sync_group.command("run")
@click.argument("sync")
@click.option("--full", is_flag=True, help="Backfill from the start instead of the cursor.")
@click.option("--wait", is_flag=True, help="Show a progress bar until the run ends.")
def sync_run(sync: str, full: bool, wait: bool) -> None:
    """Queue a run of SYNC (its id or name); 2 when it is already running."""
    _, runtime = _setup("sync run")
    from shared.syncs import SyncRunning, start_sync_run
    from worker.tasks.runs import enqueue

    try:
        with runtime.Session.begin() as session:
            sync_id = _find(session, sync).id
            run_id = start_sync_run(session, sync_id, full=full).id
    except SyncRunning as exc:
        fail(f"sync {sync!r} is already running as run {exc.run_id}")
    enqueue(run_id)
    click.echo(f"run {run_id} queued")
    if wait:
        raise SystemExit(_follow(runtime, run_id))


def _follow(runtime: Any, run_id: int, interval: float = 0.5) -> int:
    """click's progress bar over records of total_size; the counts at the end."""
    from shared.models import Run
    from shared.runs import FINISHED

    def read() -> Run:
        with runtime.Session() as session:
            run = session.get(Run, run_id)
            assert run is not None
            return run

    run = read()
    shown = 0
    with click.progressbar(
        length=1, label=f"run {run_id}", show_pos=True, file=click.get_text_stream("stderr")
    ) as bar:
        while True:
            progress = run.progress or {}
            total = progress.get("total_size")
            if total:
                bar.length = max(int(total), 1)
            done = int(progress.get("records") or 0)
            if done > shown:
                bar.update(done - shown)
                shown = done
            bar.label = f"run {run_id} {run.status} pages {progress.get('pages', 0)}"
            if run.status in FINISHED:
                break
            time.sleep(interval)
            run = read()
    progress = run.progress or {}
    counts = " ".join(
        f"{k}={progress.get(k, 0)}"
        for k in ("records", "created", "updated", "deleted", "unchanged", "pages")
    )
    click.echo(f"{run.status} api={progress.get('api')} {counts}")
    if run.status == "succeeded":
        return 0
    error = run.error or {}
    click.echo(f"run {run_id} {run.status}: {error.get('code')}: {error.get('message')}", err=True)
    return 1


@cli.command("syncs")
def syncs_list() -> None:
    """List syncs with their cursor, records, next run and last run status."""
    _, runtime = _setup("syncs")
    from sqlalchemy import select

    from shared.models import Sync
    from shared.syncs import sync_to_dict

    with runtime.Session() as session:
        rows = [sync_to_dict(session, s) for s in session.scalars(select(Sync).order_by(Sync.name))]
    if not rows:
        click.echo("no syncs yet: POST /api/v1/syncs or add one on the Syncs page")
        return
    header = ("ID", "NAME", "OBJECT", "RECORDS", "DELETED", "SCHEDULE", "NEXT RUN", "LAST RUN")
    table = [header]
    for s in rows:
        schedule = s["cron"] or (f"every {s['every_seconds']}s" if s["every_seconds"] else "-")
        last = s["last_run"]
        table.append(
            (
                str(s["id"]),
                s["name"],
                s["object"],
                str(s["records"]["total"]),
                str(s["records"]["deleted"]),
                schedule if s["enabled"] else f"{schedule} (disabled)",
                s["next_run_at"] or "-",
                f"{last['status']} (run {last['id']})" if last else "never",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
