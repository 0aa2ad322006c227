"""Run the simulator: both hosts on real threaded werkzeug servers sharing one state."""

from __future__ import annotations

import threading
import time
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from simulator.app import create_instance_app, create_login_app
from simulator.control import SimulatorControl
from simulator.state import SimState
from simulator.tls import TlsFiles

DEFAULT_PORT = 18443


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SimulatorServer:
    """Start with ``.start()`` (or ``with SimulatorServer() as sim:``); port 0 picks a free port.

    Attributes: ``login_url``, ``instance_url`` (e.g. ``http://127.0.0.1:54321``, or https with
    ``tls``), ``state`` (the shared ``SimState``) and ``control`` (a ``SimulatorControl`` on the
    login host, trusting ``tls.ca`` when TLS is on).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        login_port: int = 0,
        instance_port: int = 0,
        state: SimState | None = None,
        quiet: bool = True,
        tls: TlsFiles | None = None,
    ) -> None:
        self.host = host
        self.tls = tls
        self.quiet = quiet
        self.login_port = login_port
        self.instance_port = instance_port
        self.state = state if state is not None else SimState()
        self.login_url = ""
        self.instance_url = ""
        self.control: SimulatorControl | None = None
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> SimulatorServer:
        if self._servers:
            return self
        handler = _QuietHandler if self.quiet else None
        context = self.tls.server_context() if self.tls else None
        login, instance = (
            make_server(
                self.host, port, app, threaded=True, request_handler=handler, ssl_context=context
            )
            for port, app in (
                (self.login_port, create_login_app(self.state)),
                (self.instance_port, create_instance_app(self.state)),
            )
        )
        self._servers = [login, instance]
        self.login_port = login.server_port
        self.instance_port = instance.server_port
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.login_url = f"{scheme}://{host}:{self.login_port}"
        self.instance_url = f"{scheme}://{host}:{self.instance_port}"
        self.state.login_url = self.login_url
        self.state.instance_url = self.instance_url
        for server, name in ((login, "login"), (instance, "instance")):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"simulator-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.control = SimulatorControl(
            self.login_url, verify=str(self.tls.ca) if self.tls else True
        )
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers = []
        self._threads = []

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def seed_demo(
    state: SimState, client_id: str, client_secret: str, redirect_uri: str
) -> dict[str, Any]:
    """Register the demo connected app (consent page shown) and seed a few demo records."""
    state.register_app(
        client_id,
        client_secret,
        name="Forcebot Demo",
        redirect_uris=[redirect_uri],
        auto_approve=False,
    )
    accounts = [
        ("Acme Corporation", "Manufacturing"),
        ("Globex", "Energy"),
        ("Initech", "Technology"),
    ]
    people = [
        ("Ada", "Lovelace", "ada@acme.example"),
        ("Grace", "Hopper", "grace@globex.example"),
        ("Alan", "Turing", "alan@initech.example"),
        ("Katherine", "Johnson", "katherine@acme.example"),
        ("Linus", "Torvalds", "linus@globex.example"),
    ]
    with state.lock:
        account_ids = [
            state.create_record("Account", {"Name": name, "Industry": industry})
            for name, industry in accounts
        ]
        contact_ids = [
            state.create_record(
                "Contact",
                {
                    "FirstName": first,
                    "LastName": last,
                    "Email": email,
                    "AccountId": account_ids[i % len(account_ids)],
                },
            )
            for i, (first, last, email) in enumerate(people)
        ]
    return {"account_ids": account_ids, "contact_ids": contact_ids}


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    instance_port: int | None = None,
    state: SimState | None = None,
    tls: TlsFiles | None = None,
) -> None:
    """Run the simulator in the foreground until Ctrl-C (instance port defaults to port+1)."""
    server = SimulatorServer(
        host,
        login_port=port,
        instance_port=instance_port if instance_port is not None else port + 1,
        state=state,
        quiet=False,
        tls=tls,
    )
    server.start()
    print(f"Salesforce simulator login host:    {server.login_url}", flush=True)
    print(f"Salesforce simulator instance host: {server.instance_url}", flush=True)
    if tls is not None:
        print(f"TLS: certificates signed by the local CA {tls.ca}", flush=True)
        print(f"     trust it with REQUESTS_CA_BUNDLE={tls.bundle}", flush=True)
    print(f"Control API: {server.login_url}/_sim/  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    import argparse

    parser = argparse.ArgumentParser(description="Run the Salesforce simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--instance-port", type=int, default=None)
    args = parser.parse_args()
    serve(args.host, args.port, args.instance_port)
