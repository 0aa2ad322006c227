"""https mode (--tls), ports as options and the control API index, through real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography import x509

from forcebot.supervisor import free_port
from simulator.server import SimulatorServer
from simulator.tls import ensure_certificates
from tests.conftest import ROOT, poll


def test_certificates_are_generated_once_and_name_the_loopback_hosts(tmp_path):
    files = ensure_certificates(tmp_path / "tls")
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert files.key.stat().st_mode & 0o077 == 0  # the private key is the owner's only
    assert files.bundle.read_bytes().endswith(files.ca.read_bytes())
    again = ensure_certificates(tmp_path / "tls")
    assert again.ca.read_bytes() == files.ca.read_bytes()  # a trusted CA stays trusted


def test_both_hosts_serve_https_trusted_through_the_ca(tmp_path):
    files = ensure_certificates(tmp_path / "tls")
    with SimulatorServer(tls=files) as sim:
        assert sim.login_url.startswith("https://") and sim.instance_url.startswith("https://")
        for base in (sim.login_url, sim.instance_url):
            with pytest.raises(requests.exceptions.SSLError):
                requests.get(f"{base}/services/data/", timeout=10)  # not trusted by default
        versions = requests.get(f"{sim.instance_url}/services/data/", verify=files.ca, timeout=10)
        assert versions.status_code == 200 and versions.json()[-1]["version"] == "63.0"
        assert sim.control.info()["login_url"] == sim.login_url


def test_control_index_lists_every_endpoint(sim):
    for path in ("/_sim/", "/_sim"):
        resp = requests.get(f"{sim.login_url}{path}", timeout=10)
        assert resp.status_code == 200, path
        index = resp.json()
        assert index["login_url"] == sim.login_url
        listed = {(e["path"], m) for e in index["endpoints"] for m in e["methods"]}
        assert {("/_sim/faults", "POST"), ("/_sim/records/<obj>/seed", "POST"),
                ("/_sim/info", "GET"), ("/_sim/settings", "PATCH")} <= listed  # fmt: skip
        assert all(e["description"] for e in index["endpoints"])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORCEBOT_")}
    env.update(FORCEBOT_INSTANCE_DIR=str(tmp_path / "instance"), PYTHONPATH=str(ROOT))
    return env


def _free_pair() -> int:
    while True:
        port = free_port()
        if port < 65000 and _free(port + 1):
            return port


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_simulator(tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "forcebot", "simulator", *args],
        env=_env(tmp_path),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_cli_tls_prints_the_ca_and_two_instances_do_not_collide(tmp_path):
    first_port, second_port = _free_pair(), None
    procs = []
    try:
        first, first_log = _start_simulator(
            tmp_path, "first", "--tls", "--port", str(first_port), "--tls-dir", str(tmp_path / "t")
        )
        procs.append(first)
        poll(lambda: "Control API" in first_log.read_text(), timeout=60, message="first up")
        text = first_log.read_text()
        ca = tmp_path / "t" / "ca.pem"
        assert f"local CA {ca}" in text
        assert f"https://127.0.0.1:{first_port}" in text
        second_port = _free_pair()
        second, second_log = _start_simulator(tmp_path, "second", "--port", str(second_port))
        procs.append(second)
        poll(lambda: "Control API" in second_log.read_text(), timeout=60, message="second up")
        index = requests.get(f"https://127.0.0.1:{first_port}/_sim/", verify=ca, timeout=10)
        assert index.status_code == 200 and index.json()["endpoints"]
        plain = requests.get(f"http://127.0.0.1:{second_port}/_sim/info", timeout=10).json()
        assert plain["instance_url"] == f"http://127.0.0.1:{second_port + 1}"
        instance = requests.get(
            f"https://127.0.0.1:{first_port + 1}/services/data/", verify=ca, timeout=10
        )
        assert instance.status_code == 200
    finally:
        for proc in procs:
            _stop(proc)
    assert all(p.returncode is not None for p in procs)


def test_up_demo_tls_links_over_https_and_prints_a_control_url_that_answers(tmp_path):
    port, sim_port = free_port(), _free_pair()
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "forcebot", "up", "--port", str(port), "--demo", "--tls",
         "--simulator-port", str(sim_port)],
        env=_env(tmp_path),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )  # fmt: skip
    try:
        poll(lambda: "Forcebot is running" in log.read_text(), timeout=120, message="up --demo")
        output = log.read_text()
        assert f"Salesforce simulator: https://127.0.0.1:{sim_port}" in output
        assert "Demo account 'demo' linked to the simulated org" in output
        control_url = f"https://127.0.0.1:{sim_port}/_sim/"
        assert f"Simulator control API: {control_url}" in output
        ca = tmp_path / "instance" / "simulator-tls" / "ca.pem"
        assert requests.get(control_url, verify=ca, timeout=10).json()["endpoints"]
        result = subprocess.run(
            [sys.executable, "-m", "forcebot", "trigger", "find-contact-by-email",
             "--payload", '{"email": "ada@acme.example"}', "--wait"],
            env=_env(tmp_path), capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Lovelace" in result.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


def test_readme_app_registration_example_works(sim):
    """The README's curl example, sent as written, registers an app that can start a flow."""
    readme = (ROOT / "README.md").read_text()
    body = readme.split("curl -s -X POST http://127.0.0.1:18443/_sim/apps", 1)[1]
    payload = body.split("-d '", 1)[1].split("'", 1)[0]
    resp = requests.post(f"{sim.login_url}/_sim/apps", data=payload,
                         headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json()["redirect_uris"] == ["http://127.0.0.1:8000/callback"]
    consent = requests.get(f"{sim.login_url}/services/oauth2/authorize", params={
        "response_type": "code", "client_id": "my-app", "code_challenge": "x" * 43,
        "redirect_uri": "http://127.0.0.1:8000/callback"}, timeout=10)  # fmt: skip
    assert consent.status_code == 200 and "My App" in consent.text
