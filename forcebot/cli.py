"""The `forcebot` command: the composition root that builds Settings and wires the parts.

Every command reads Settings once; a bad setting is one line on stderr and exit status 2.
Bad arguments are click usage errors, also exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from shared.config import ConfigError, Settings, run_timings


def fail(message: str, status: int = 2) -> NoReturn:
    click.echo(f"forcebot: {message}", err=True)
    raise SystemExit(status)


def load_settings() -> Settings:
    try:
        settings = Settings.from_env()
        run_timings()  # a malformed FORCEBOT_RUN_* fails now, not in the first task
    except ConfigError as exc:
        fail(str(exc))
    return settings


def checked_database(settings: Settings) -> None:
    """Fail with one line if the database cannot be reached (instead of a traceback later)."""
    from sqlalchemy import text

    from shared.db import make_engine

    if settings.is_sqlite:
        settings.instance_dir.mkdir(parents=True, exist_ok=True)
    from shared.crypto import Crypto
    from shared.keys import KeysMismatch, check_stored_secrets

    engine = make_engine(settings.database_url)
    try:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure is reported the same way
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
            fail(f"FORCEBOT_DATABASE_URL: cannot connect to the database ({reason})")
        # Fail at start-up, not at the first refresh, when stored secrets don't decrypt.
        try:
            check_stored_secrets(engine, Crypto(settings.encryption_keys))
        except KeysMismatch as exc:
            fail(str(exc))
    finally:
        engine.dispose()


def require_redis(settings: Settings, command: str) -> str:
    if not settings.redis_url:
        fail(
            f"FORCEBOT_REDIS_URL: required for `forcebot {command}` (unset, and no `forcebot up` "
            f"with an embedded Redis is running on {settings.instance_dir})"
        )
    return settings.redis_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Forcebot: connect your systems to Salesforce and run bot behaviors in the background."""


@cli.command()
@click.option("--demo", is_flag=True, help="Also run the Salesforce simulator with demo data.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--simulator-port",
    type=click.IntRange(1, 65534),
    help="With --demo: the simulator's login port (instance port + 1). Default: 18443, or "
    "a free port when 18443 is taken.",
)
@click.option("--tls", is_flag=True, help="With --demo: serve the simulator over https.")
def up(demo: bool, port: int, host: str, simulator_port: int | None, tls: bool) -> None:
    """Migrate, then run web + worker + beat (+ embedded Redis) until Ctrl-C."""
    from .up import run_up

    raise SystemExit(
        run_up(
            load_settings(),
            demo=demo,
            port=port,
            host=host,
            simulator_port=simulator_port,
            tls=tls,
        )  # fmt: skip
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def web(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the web app and API with gunicorn."""
    settings = load_settings()
    require_redis(settings, "web")
    checked_database(settings)
    _load_behavior_modules(settings)  # fail here, not in each gunicorn worker
    from .gunicorn_app import serve

    serve(settings, host=host, port=port, workers=workers, threads=threads)


@cli.command()
@click.option("--concurrency", "-c", default=2, show_default=True, type=click.IntRange(1, 256))
@click.option("--name", "-n", default="forcebot@%h", show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option(
    "--queues",
    "-Q",
    default="forcebot,forcebot.beat",
    show_default=True,
    help="Queues to consume: runs go to 'forcebot', beat's ticks to 'forcebot.beat'.",
)
def worker(concurrency: int, name: str, loglevel: str, queues: str) -> None:
    """Run a Celery worker."""
    settings = load_settings()
    require_redis(settings, "worker")
    checked_database(settings)
    from worker.celery_app import configure

    _load_behavior_modules(settings)
    app = configure(settings)
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            f"--hostname={name}",
            f"--queues={queues}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@cli.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the beat process (ticks the dispatchers; timetables live in the database)."""
    settings = load_settings()
    require_redis(settings, "beat")
    from worker.celery_app import configure

    app = configure(settings)
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.instance_dir / f"celerybeat-schedule-{os.getpid()}"
    try:
        app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])
    finally:
        for path in settings.instance_dir.glob(f"{schedule.name}*"):
            path.unlink(missing_ok=True)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (alembic upgrade head)."""
    settings = load_settings()
    checked_database(settings)
    from shared.migrate import upgrade

    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` drops everything)."""
    settings = load_settings()
    checked_database(settings)
    from shared.migrate import downgrade

    downgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


@cli.group()
def admin() -> None:
    """Admins who log in to the pages."""


@admin.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def admin_create(email: str, password_stdin: bool) -> None:
    """Add an admin; prints a generated password unless --password-stdin."""
    from shared.auth import AdminError, create_admin, generate_password
    from shared.runtime import Runtime

    settings = load_settings()
    checked_database(settings)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        generated = False
    else:
        password, generated = generate_password(), True
    runtime = Runtime(settings)
    try:
        with runtime.Session.begin() as session:
            create_admin(session, email, password)
    except AdminError as exc:
        fail(str(exc))
    click.echo(f"created admin {email.strip().lower()}")
    if generated:
        click.echo(f"password: {password}  (shown once)")


@cli.group()
def token() -> None:
    """API tokens for /api/v1."""


@token.command("create")
@click.argument("name")
def token_create(name: str) -> None:
    """Print a new API token (shown once, stored hashed)."""
    from shared.auth import AdminError, create_api_token
    from shared.runtime import Runtime

    settings = load_settings()
    checked_database(settings)
    runtime = Runtime(settings)
    try:
        with runtime.Session.begin() as session:
            _, plaintext = create_api_token(session, name)
    except AdminError as exc:
        fail(str(exc))
    click.echo(plaintext)


@cli.command()
@click.option("--port", default=18443, show_default=True, type=click.IntRange(1, 65534))
@click.option("--instance-port", type=click.IntRange(1, 65535), help="Default: PORT + 1.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--demo", is_flag=True, help="Seed demo records and the demo connected app.")
@click.option("--tls", is_flag=True, help="Serve both hosts over https (a generated local CA).")
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the CA and certificate are kept. Default: <instance dir>/simulator-tls.",
)
def simulator(
    port: int, instance_port: int | None, host: str, demo: bool, tls: bool, tls_dir: Path | None
) -> None:
    """Run the Salesforce simulator alone (login host on PORT, instance host on PORT+1)."""
    from simulator.server import seed_demo, serve
    from simulator.state import SimState
    from simulator.tls import ensure_certificates

    tls_files = None
    if tls:
        instance = Path(os.environ.get("FORCEBOT_INSTANCE_DIR", "instance"))
        tls_files = ensure_certificates(tls_dir or instance / "simulator-tls")

    state = SimState()
    if demo:
        # Set by `forcebot up --demo`, which owns the demo service's consumer secret.
        client_id = os.environ.get("FORCEBOT_DEMO_CLIENT_ID", "forcebot-demo")
        secret = os.environ.get("FORCEBOT_DEMO_CLIENT_SECRET", "forcebot-demo-secret")
        redirect = os.environ.get(
            "FORCEBOT_DEMO_REDIRECT_URI", "http://127.0.0.1:5000/oauth/callback"
        )
        seed_demo(state, client_id, secret, redirect)
    serve(host, port, instance_port or port + 1, state=state, tls=tls_files)


def _load_behavior_modules(settings: Settings) -> None:
    from shared.behaviors.registry import load_modules

    try:
        load_modules(settings.behavior_modules)
    except ImportError as exc:
        fail(f"FORCEBOT_BEHAVIOR_MODULES: cannot import {exc.name or 'a module'} ({exc})")


# Feature commands live beside this module, one module per concern; importing registers them.
from .commands import behaviors, keys, runs, schedules, syncs  # noqa: E402, F401


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="forcebot")
    except ConfigError as exc:
        fail(str(exc))
