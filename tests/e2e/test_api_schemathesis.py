"""Schemathesis against the live app: every check, a fixed seed, bounded examples, zero failures.

The app runs on a real threaded server over a throwaway database, with an account linked at
the simulator, a stored behavior and a queued run, so that generated requests reach real
rows; destructive operations (DELETE, revoke, cancel) are included.

Where a request can fit the document and still be refused with 422 the document says so in
words, because JSON Schema cannot express the rule, and only there is 422 added to the
statuses `positive_data_acceptance` accepts:
- behavior definitions and packages (`POST /behaviors`, `PUT /behaviors/{name}`,
  `POST /packages`): templates must parse and name only what exists, steps must be
  referenced after they run, the named account must exist;
- a run's payload (`POST /behaviors/{name}/runs`) is checked against that behavior's inputs
  (the document points at GET /behaviors/{name}/payload.schema.json, which states them, but
  the run operation's own body schema cannot depend on the path's behavior).

Webhook URLs need no exemption: the schema's pattern is the server's whole save-time rule
(the SSRF guard's DNS-dependent rules apply at delivery, and nothing is delivered here). No
host name is resolved during the run: `getaddrinfo` is wrapped to record any name that is not
loopback, and the test fails if one was looked up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

SEED = 20261201
MAX_EXAMPLES = 50
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409"]

[[operations]]
include-path-regex = "^/(behaviors|behaviors/[{]name[}]|packages|behaviors/[{]name[}]/runs)$"
include-method-regex = "^(POST|PUT)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
TARGET = {
    "name": "st-target",
    "inputs": {"email": {"type": "string", "required": True}},
    "steps": [{"id": "s", "action": "set", "vars": {"x": "{{ inputs.email }}"}}],
}


def test_schemathesis_all_checks_zero_failures(
    live_server: Any, linked_account: Any, api_token: str, tmp_path: Path, monkeypatch: Any
) -> None:
    looked_up: list[str] = []
    system = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host) not in LOOPBACK_NAMES:
            looked_up.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, "tests resolve loopback names only")
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    linked_account("st-acme")
    headers = {"Authorization": f"Bearer {api_token}"}
    base = f"{live_server.url}/api/v1"
    response = requests.post(f"{base}/behaviors", json=TARGET, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    response = requests.post(
        f"{base}/behaviors/st-target/runs", json={"payload": {"email": "a@b.c"}},
        headers=headers, timeout=10,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            f"{base}/openapi.json",
            "-H",
            f"Authorization: Bearer {api_token}",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.out").write_text(output)
    print(output[-3000:], f"elapsed={elapsed:.1f}s")
    assert looked_up == [], f"host names were resolved: {sorted(set(looked_up))}"
    assert result.returncode == 0, output[-20000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
