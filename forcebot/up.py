"""`forcebot up`: the embedded default in one foreground command."""

from __future__ import annotations

import os
import sys

import click

from shared.config import EMBEDDED_REDIS_MARKER, UP_STATUS_FILE, Settings
from shared.runtime import Runtime

from .cli import checked_database
from .supervisor import Child, Supervisor, embedded_redis_command, free_port, wait_for_port

DEMO_SIMULATOR_PORT = 18443


def ensure_first_admin(runtime: Runtime) -> tuple[str, str | None] | None:
    """Create the first admin when there is none; return (email, generated password)."""
    from sqlalchemy import func, select

    from shared.auth import create_admin, generate_password
    from shared.models import Admin

    settings = runtime.settings
    with runtime.Session.begin() as session:
        if session.scalar(select(func.count()).select_from(Admin)):
            return None
        email = settings.admin_email or "admin@localhost"
        password = settings.admin_password or generate_password()
        create_admin(session, email, password)
    return email, (None if settings.admin_password else password)


def run_up(
    settings: Settings,
    *,
    demo: bool,
    port: int,
    host: str,
    simulator_port: int | None = None,
    tls: bool = False,
) -> int:
    from shared.migrate import upgrade

    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    checked_database(settings)
    upgrade(settings.database_url)
    # This process's own database work (first admin, demo setup); the children build theirs.
    runtime = Runtime(settings)
    try:
        return _run(
            settings, runtime, demo=demo, port=port, host=host,
            simulator_port=simulator_port, tls=tls,
        )  # fmt: skip
    finally:
        runtime.close()


def _run(
    settings: Settings,
    runtime: Runtime,
    *,
    demo: bool,
    port: int,
    host: str,
    simulator_port: int | None = None,
    tls: bool = False,
) -> int:
    first_admin = ensure_first_admin(runtime)
    env = dict(os.environ)
    env["FORCEBOT_INSTANCE_DIR"] = str(settings.instance_dir)
    reachable_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    public_url = settings.public_url
    if "FORCEBOT_PUBLIC_URL" not in os.environ:
        public_url = f"http://{reachable_host}:{port}"
        env["FORCEBOT_PUBLIC_URL"] = public_url
    callback_url = public_url.rstrip("/") + "/oauth/callback"
    me = [sys.executable, "-m", "forcebot"]
    supervisor = Supervisor(
        echo=lambda line: click.echo(line, err=True),
        status_path=settings.instance_dir / UP_STATUS_FILE,
    )

    try:
        if settings.redis_is_embedded:
            redis_port = free_port()
            supervisor.add(
                Child("redis", embedded_redis_command(settings.instance_dir, redis_port)),
                wait_port=("127.0.0.1", redis_port),
            )
            env["FORCEBOT_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            marker = settings.instance_dir / EMBEDDED_REDIS_MARKER
            marker.write_text(env["FORCEBOT_REDIS_URL"] + "\n")
            supervisor.on_stop(lambda: marker.unlink(missing_ok=True))

        if demo:
            sim_port = simulator_port or DEMO_SIMULATOR_PORT
            if simulator_port and not (_port_free(sim_port) and _port_free(sim_port + 1)):
                raise RuntimeError(f"simulator ports {sim_port} and {sim_port + 1} must be free")
            if not _port_free(sim_port) or not _port_free(sim_port + 1):
                sim_port = free_port()
                while not _port_free(sim_port + 1):
                    sim_port = free_port()
            from .demo import link_demo, prepare_demo

            sim_url = f"{'https' if tls else 'http'}://127.0.0.1:{sim_port}"
            sim_args = ["simulator", "--demo", "--port", str(sim_port)]
            if tls:
                from simulator.tls import ensure_certificates

                tls_dir = settings.instance_dir / "simulator-tls"
                # Every process of this instance trusts the local CA beside the usual roots.
                bundle = str(ensure_certificates(tls_dir).bundle)
                env["REQUESTS_CA_BUNDLE"] = os.environ["REQUESTS_CA_BUNDLE"] = bundle
                sim_args += ["--tls", "--tls-dir", str(tls_dir)]
            client_id, secret = prepare_demo(runtime, sim_url)
            sim_env = {
                **env,
                "FORCEBOT_DEMO_CLIENT_ID": client_id,
                "FORCEBOT_DEMO_CLIENT_SECRET": secret,
                "FORCEBOT_DEMO_REDIRECT_URI": callback_url,
            }
            supervisor.add(
                Child("simulator", [*me, *sim_args], sim_env),
                wait_port=("127.0.0.1", sim_port + 1),
            )
            click.echo(f"Salesforce simulator: {sim_url} (a simulated org, in memory)")
            click.echo(f"Simulator control API: {sim_url}/_sim/")
            for line in link_demo(runtime, callback_url, sim_url):
                click.echo(line)

        supervisor.add(
            Child("web", [*me, "web", "--host", host, "--port", str(port), "--workers", "1"], env),
            wait_port=(reachable_host, port),
        )
        # An OOM-killed worker or a crashed beat is restarted; web and Redis are not.
        supervisor.add(Child("worker", [*me, "worker", "--concurrency", "2"], env, restart=True))
        # Beat's ticks (dispatch, reconcile, deliveries) also get a worker of their own, so two
        # long runs holding the worker's slots cannot make them late (as docker-compose does).
        beat_worker = [*me, "worker", "--concurrency", "1", "--queues", "forcebot.beat"]
        beat_worker += ["--name", "forcebot-beat@%h", "--loglevel", "WARNING"]
        supervisor.add(Child("beat-worker", beat_worker, env, restart=True))
        supervisor.add(Child("beat", [*me, "beat", "--loglevel", "WARNING"], env, restart=True))
    except KeyboardInterrupt:
        supervisor.stop()
        return 130
    except Exception as exc:  # noqa: BLE001 - report in one line, stop the children
        click.echo(f"forcebot: start-up failed: {type(exc).__name__}: {exc}", err=True)
        supervisor.stop()
        return 1

    click.echo("")
    click.echo(f"Forcebot is running at {public_url}  (Ctrl-C stops everything)")
    if first_admin is not None:
        email, password = first_admin
        if password:
            click.echo(f"First admin: {email}  password: {password}  (shown once)")
        else:
            click.echo(f"First admin: {email} (password from FORCEBOT_ADMIN_PASSWORD)")
    sys.stdout.flush()
    return supervisor.run()


def _port_free(port: int) -> bool:
    return not wait_for_port("127.0.0.1", port, timeout=0.05)
