"""Demo mode (`forcebot up --demo`): a simulated org, a service, a linked account, behaviors.

The simulator keeps its state in memory, so every `up --demo` starts a fresh simulated org:
`prepare_demo` makes sure the demo service exists (its consumer secret is generated once and
kept encrypted like any other), the simulator process is started with that app registered and
demo records seeded, and `link_demo` then links the `demo` account through the product's own
link flow (authorize with PKCE → code → exchange → identity), so the demo exercises the same
code a real org does. The simulator's consent page stays on for links people start themselves.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
from sqlalchemy import select

from shared.models import Service
from shared.runtime import Runtime

DEMO_SERVICE = "demo-simulator"
DEMO_ACCOUNT = "demo"
DEMO_CLIENT_ID = "3MVG9forcebot.demo.consumer.key"
PACKAGE = Path(__file__).resolve().parent.parent / "packages" / "salesforce-bot.yaml"


def prepare_demo(runtime: Runtime, simulator_url: str) -> tuple[str, str]:
    """Create or update the demo service; return (client_id, client_secret) for the simulator."""
    from shared.services import create_service, update_service

    with runtime.Session.begin() as session:
        service = session.scalar(select(Service).where(Service.name == DEMO_SERVICE))
        fields = {"login_url": simulator_url, "client_id": DEMO_CLIENT_ID}
        if service is None:
            secret = secrets.token_urlsafe(24)
            create_service(
                session, runtime.crypto, {"name": DEMO_SERVICE, **fields, "client_secret": secret}
            )
        else:
            update_service(session, runtime.crypto, service, fields)
            secret = runtime.crypto.decrypt(service.client_secret_enc)
    return DEMO_CLIENT_ID, secret


def link_demo(runtime: Runtime, callback_url: str, simulator_url: str) -> Iterator[str]:
    """Link the demo account through the real flow and import the salesforce-bot package."""
    from shared.behaviors.packages import import_package
    from shared.linking import complete_link, start_link
    from simulator.control import SimulatorControl

    control = SimulatorControl(simulator_url)
    with runtime.Session.begin() as session:
        service = session.scalars(select(Service).where(Service.name == DEMO_SERVICE)).one()
        started = start_link(session, runtime.crypto, callback_url, service.id, DEMO_ACCOUNT)
    # Consent is given on the demo user's behalf once; people who link later see the page.
    control.update_app(DEMO_CLIENT_ID, auto_approve=True)
    try:
        answer = requests.get(started.authorize_url, allow_redirects=False, timeout=10)
    finally:
        control.update_app(DEMO_CLIENT_ID, auto_approve=False)
    params = dict(parse_qsl(urlsplit(answer.headers.get("Location", "")).query))
    result = complete_link(runtime, params, redirect_uri=callback_url)
    yield (
        f"Demo account '{result.account_name}' linked to the simulated org "
        f"({result.username}, org {result.organization_id})"
    )
    with runtime.Session.begin() as session:
        report = import_package(session, PACKAGE.read_text(), account=DEMO_ACCOUNT)
    names = ", ".join(item["name"] for item in report.to_dict()["behaviors"])
    yield f"Behaviors from packages/salesforce-bot.yaml: {names}"
    yield (
        f"Try: {runnable_command()} trigger find-contact-by-email "
        """--payload '{"email": "ada@acme.example"}' --wait"""
    )


def runnable_command() -> str:
    """How to run `forcebot` from any shell: the bare name when it is on PATH, else the
    script beside this interpreter (a virtualenv that is not activated), else `python -m`."""
    import shlex
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "forcebot"
    on_path = shutil.which("forcebot")
    if beside.exists():
        same = on_path is not None and Path(on_path).resolve() == beside.resolve()
        return "forcebot" if same else shlex.quote(str(beside))
    return "forcebot" if on_path else f"{shlex.quote(sys.executable)} -m forcebot"
