"""`forcebot schedules`: list schedules with their next fire time and last run status."""

from __future__ import annotations

import click

from forcebot.cli import checked_database, cli, load_settings


@cli.command("schedules")
def schedules_list() -> None:
    """List schedules: timing, next fire time (local to the schedule), last run, skips."""
    from sqlalchemy import select

    from shared.models import Schedule
    from shared.runtime import Runtime
    from shared.schedules import last_runs, schedule_to_dict

    settings = load_settings()
    checked_database(settings)
    runtime = Runtime(settings)
    try:
        with runtime.Session() as session:
            rows = list(session.scalars(select(Schedule).order_by(Schedule.name)))
            last = last_runs(session, rows)
            items = [schedule_to_dict(s, last.get(s.last_run_id or -1)) for s in rows]
    finally:
        runtime.close()
    if not items:
        click.echo("no schedules; create one on the Schedules page or with POST /api/v1/schedules")
        return
    header = ("NAME", "BEHAVIOR", "WHEN", "NEXT", "LAST RUN", "SKIPPED")
    table = [header]
    for item in items:
        run = item["last_run"]
        table.append(
            (
                item["name"],
                item["behavior"],
                item["description"],
                (item["next_runs"] or ["disabled"])[0],
                f"#{run['id']} {run['status']}" if run else "-",
                str(item["skipped_slots"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for item in items:
        if item["last_error"]:
            click.echo(f"{item['name']}: {item['last_error']}", err=True)
