"""Salesforce client overhead: our client (token check, usage recording, concurrency cap,
exchange redaction) vs a bare requests.Session with the same token, against the simulator."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from shared.config import Settings
from shared.migrate import upgrade
from shared.runtime import Runtime


def _link(runtime: Runtime, sim, callback_url: str) -> int:  # type: ignore[no-untyped-def]
    """Link an account through the product's own flow (the one `up --demo` uses)."""
    from forcebot.demo import DEMO_ACCOUNT, link_demo, prepare_demo
    from shared.models import Account

    client_id, secret = prepare_demo(runtime, sim.login_url)
    sim.control.register_app(client_id, secret, [callback_url])
    for _ in link_demo(runtime, callback_url, sim.login_url):
        pass
    with runtime.Session() as session:
        return session.query(Account.id).filter_by(name=DEMO_ACCOUNT).scalar()


def run(repeat: int = 300) -> float:
    import subprocess

    from forcebot.supervisor import embedded_redis_command, free_port, wait_for_port
    from shared.salesforce.client import SalesforceClient
    from simulator.server import SimulatorServer

    with tempfile.TemporaryDirectory() as tmp, SimulatorServer() as sim:
        redis_url = os.environ.get("FORCEBOT_TEST_REDIS_URL")
        redis_proc = None
        if not redis_url:
            port = free_port()
            redis_proc = subprocess.Popen(embedded_redis_command(Path(tmp), port))
            wait_for_port("127.0.0.1", port, 15)
            redis_url = f"redis://127.0.0.1:{port}/0"
        settings = Settings(
            instance_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/bench.db",
            redis_url=redis_url,
            public_url="http://127.0.0.1:5000",
            secret_key="x" * 32,
            encryption_keys=[Fernet.generate_key().decode()],
        )
        upgrade(settings.database_url)
        runtime = Runtime(settings)
        try:
            account_id = _link(runtime, sim, settings.oauth_callback_url)
            record = sim.control.create_record("Contact", {"LastName": "Bench"})
            client = SalesforceClient.for_account(runtime, account_id)
            path = f"/services/data/v62.0/sobjects/Contact/{record}"
            token = runtime.crypto.decrypt(client_token(runtime, account_id))
            bare_session = requests.Session()
            bare_session.headers["Authorization"] = f"Bearer {token}"

            def bare() -> None:
                bare_session.get(sim.instance_url + path, timeout=30).raise_for_status()

            def ours() -> None:
                client.get("Contact", record)

            bare(), ours()
            start = time.perf_counter()
            for _ in range(repeat):
                bare()
            bare_s = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(repeat):
                ours()
            ours_s = time.perf_counter() - start
        finally:
            runtime.close()
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait(10)
    ratio = ours_s / bare_s
    print(
        f"client: {repeat} GETs  bare requests {bare_s * 1000 / repeat:.2f} ms  "
        f"SalesforceClient {ours_s * 1000 / repeat:.2f} ms  ratio {ratio:.2f}x"
    )
    return ratio


def client_token(runtime: Runtime, account_id: int) -> str:
    from shared.models import Account

    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.access_token_enc
        return account.access_token_enc
