"""The whole salesforce-bot package and the README's "A first run" commands, unchanged, against
`forcebot up --demo --tls`: every Salesforce call of the product goes over https to the
simulator's generated CA (issue 14's "run unchanged against --tls")."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from forcebot.supervisor import free_port
from simulator.control import SimulatorControl
from tests.conftest import ROOT, poll

PACKAGE = ROOT / "packages" / "salesforce-bot.yaml"

# A payload per behavior of the package: the test fails when the package gains a behavior this
# list does not know, so "the whole package" stays whole.
PAYLOADS: dict[str, dict] = {
    "find-contact-by-email": {"email": "ada@acme.example"},
    "create-lead": {"last_name": "Turing", "company": "Bletchley"},
    "create-case-for-email": {"email": "ada@acme.example", "subject": "Printer on fire"},
    "record-api-limits": {},
    "contact-changed": {
        "change": "updated",
        "record": {"Id": "003000000000001AAA"},
        "changed_fields": ["Email"],
    },
}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORCEBOT_")}
    env.update(FORCEBOT_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    return env


def _free_pair() -> int:
    import socket

    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        if port < 65000:
            return port


def _first_run_commands() -> list[str]:
    """The shell commands of the README's "A first run" block, continuation lines joined."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first run", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.split("  #", 1)[0].strip()
        if line:
            commands.append(line)
    return commands


def test_readme_first_run_and_the_whole_package_run_unchanged_over_https(tmp_path):
    package = yaml.safe_load(PACKAGE.read_text())
    assert {b["name"] for b in package["behaviors"]} == set(PAYLOADS)

    port, sim_port = free_port(), _free_pair()
    env = _env(tmp_path)
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "forcebot", "up", "--port", str(port), "--demo", "--tls",
         "--simulator-port", str(sim_port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    forcebot = [sys.executable, "-m", "forcebot"]

    def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, cwd=ROOT, timeout=timeout
        )

    try:
        poll(lambda: "Forcebot is running" in log.read_text(), timeout=120, message="up --demo")
        ca = tmp_path / "instance" / "simulator-tls" / "ca.pem"
        assert f"local CA {ca}" in log.read_text() or ca.exists()

        # 1. The README's commands, as written; only the runnable path, the port and the token
        # (which the README leaves for the reader to paste) are substituted.
        commands = _first_run_commands()
        assert [c.split()[0] for c in commands] == [".venv/bin/forcebot"] * 2 + ["curl"]
        token = ""
        for command in commands:
            argv = shlex.split(command.replace("<token>", token))
            if argv[0] == ".venv/bin/forcebot":
                argv = forcebot + argv[1:]
            argv = [a.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}") for a in argv]
            if argv[0] == "curl":
                argv[1:1] = ["-s", "-o", str(tmp_path / "curl.json"), "-w", "%{http_code}"]
            result = run(argv)
            assert result.returncode == 0, (command, result.stdout, result.stderr)
            if "trigger" in argv:
                case = json.loads(result.stdout.strip().splitlines()[-1])
                assert case["case_id"] and case["contact_id"]
            elif "token" in argv:
                token = result.stdout.strip().split()[-1]
            else:
                assert result.stdout == "202", (tmp_path / "curl.json").read_text()
                assert json.loads((tmp_path / "curl.json").read_text())["id"]

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        base = f"http://127.0.0.1:{port}/api/v1"
        accounts = api.get(f"{base}/accounts", timeout=10).json()["accounts"]
        demo = next(a for a in accounts if a["name"] == "demo")
        assert demo["instance_url"].startswith("https://127.0.0.1:")  # the product uses https

        # 2. Every behavior of the package through the CLI, each to `succeeded`.
        for name, payload in PAYLOADS.items():
            result = run(forcebot + ["trigger", name, "--payload", json.dumps(payload), "--wait"])
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            output = json.loads(result.stdout.strip().splitlines()[-1])
            if name == "find-contact-by-email":
                assert output["LastName"] == "Lovelace"
            if name == "record-api-limits":
                assert output["max"] > 0 and output["used"] == output["max"] - output["remaining"]
            if name == "contact-changed":
                assert output["change"] == "updated"

        # 3. Its sync (with its on_change behavior) and its schedule. Beat may already have run
        # the sync once on import; a Contact made now must arrive either way.
        sim = SimulatorControl(f"https://127.0.0.1:{sim_port}", verify=str(ca))
        grace = sim.create_record(
            "Contact", {"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@navy.example"}
        )
        result = run(forcebot + ["sync", "run", "contacts", "--wait"], timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "succeeded" in result.stdout
        at_sim = {r["Id"] for r in sim.records("Contact", include_deleted=False)}

        def synced() -> set | None:
            got = api.get(f"{base}/records/Contact", params={"limit": 1000}, timeout=10).json()
            ids = {r["id"] for r in got["records"]}
            return ids if grace in ids else None

        assert poll(synced, timeout=60, message="the new Contact in /records") == at_sim

        def changes_done() -> list | None:
            page = api.get(
                f"{base}/runs", params={"behavior": "contact-changed", "limit": 200}, timeout=10
            ).json()["runs"]
            changed = [r for r in page if r["trigger"] == "change"]
            if len(changed) == len(at_sim) and all(r["status"] == "succeeded" for r in changed):
                return changed
            return None

        poll(changes_done, timeout=120, interval=0.5, message="one contact-changed run each")

        listed = run(forcebot + ["schedules"])
        assert listed.returncode == 0 and "hourly-api-limits" in listed.stdout, listed.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
