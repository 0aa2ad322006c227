"""The salesforce-bot package, imported with the CLI, runs each behavior through the API,
Redis and a real worker process against the simulator."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from forcebot.cli import cli
from tests.conftest import poll, settings_env

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"


def test_package_imports_and_every_behavior_runs_through_a_worker(
    settings, sim, linked_account, worker, api
):
    linked_account(name="acme-prod")
    sim.control.create_record(
        "Contact", {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@acme.example"}
    )
    result = CliRunner(env=settings_env(settings)).invoke(
        cli, ["package", "import", str(PACKAGE), "--account", "acme-prod"]
    )
    assert result.exit_code == 0, result.output
    assert "find-contact-by-email" in result.output

    payloads = {
        "find-contact-by-email": {"email": "ada@acme.example"},
        "create-lead": {"last_name": "Turing", "company": "Bletchley"},
        "create-case-for-email": {"email": "ada@acme.example", "subject": "Printer on fire"},
        "record-api-limits": {},
    }
    listed = {b["name"] for b in api.get("/behaviors").get_json()["behaviors"]}
    assert set(payloads) <= listed

    run_ids = {}
    for name, payload in payloads.items():
        response = api.post(f"/behaviors/{name}/runs", json={"payload": payload})
        assert response.status_code == 202, response.get_json()
        run_ids[name] = response.get_json()["id"]

    def finished():
        runs = {name: api.get(f"/runs/{rid}").get_json() for name, rid in run_ids.items()}
        if all(r["status"] in ("succeeded", "failed") for r in runs.values()):
            return runs
        return None

    runs = poll(finished, timeout=60, interval=0.2, message="all package runs to finish")
    for name, run in runs.items():
        assert run["status"] == "succeeded", (name, run["error"])
        assert run["steps"] and all(s["status"] in ("succeeded", "skipped") for s in run["steps"])

    assert runs["find-contact-by-email"]["result"]["Email"] == "ada@acme.example"
    lead_id = runs["create-lead"]["result"]
    assert [r["Id"] for r in sim.control.records("Lead")] == [lead_id]
    case = runs["create-case-for-email"]["result"]
    cases = sim.control.records("Case")
    assert [c["Id"] for c in cases] == [case["case_id"]]
    assert cases[0]["ContactId"] == case["contact_id"] and cases[0]["Subject"] == "Printer on fire"
    limits = runs["record-api-limits"]["result"]
    assert limits["max"] > 0 and limits["used"] == limits["max"] - limits["remaining"]
