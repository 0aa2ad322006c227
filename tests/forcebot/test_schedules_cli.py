"""`forcebot schedules`: the table with next fire time and last run status."""

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from forcebot.cli import cli
from shared.behaviors.store import save_behavior
from shared.models import Schedule, utcnow
from shared.schedules import dispatch_schedules, save_schedule
from tests.conftest import settings_env
from tests.e2e.runs_support import NOOP_BEHAVIOR


def _run(settings):
    return CliRunner(env=settings_env(settings)).invoke(cli, ["schedules"])


def test_lists_next_fire_time_and_last_run(settings, runtime):
    empty = _run(settings)
    assert empty.exit_code == 0 and "no schedules" in empty.output
    with runtime.Session.begin() as session:
        save_behavior(session, NOOP_BEHAVIOR)
        save_schedule(
            session,
            {"name": "paris", "behavior": "noop", "cron": "0 9 * * *",
             "timezone": "Europe/Paris", "payload": {"n": 1}},
        )  # fmt: skip
        save_schedule(
            session, {"name": "often", "behavior": "noop", "every_seconds": 60, "payload": {"n": 2}}
        )
        due = session.scalar(select(Schedule).where(Schedule.name == "often"))
        due.next_run_at = utcnow() - timedelta(seconds=1)
    report = dispatch_schedules(runtime.Session)
    result = _run(settings)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "BEHAVIOR", "WHEN", "NEXT", "LAST", "RUN", "SKIPPED"]
    often = next(line for line in lines if line.startswith("often"))
    assert f"#{report.run_ids[0]} queued" in often and "every minute" in often
    paris = next(line for line in lines if line.startswith("paris"))
    assert "At 09:00, Europe/Paris" in paris and "T09:00:00+0" in paris and " - " in paris
