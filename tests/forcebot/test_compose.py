"""docker-compose.yml cannot run here (no Docker engine), so check it against the CLI and
Settings: every command exists, every FORCEBOT_ variable is one Settings reads."""

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from forcebot.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_variables():
    source = (ROOT / "shared" / "config.py").read_text()
    return set(re.findall(r'"(FORCEBOT_[A-Z_]+)"', source))


def test_services_and_shared_anchor():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    for name in ("web", "worker", "beat", "migrate"):
        assert services[name]["image"] == "forcebot:latest", name
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["restart"] == "no"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_commands_are_real_cli_commands():
    runner = CliRunner()
    for name, service in _compose()["services"].items():
        command = service.get("command")
        if not command or command[0] != "forcebot":
            continue
        argv = command[1:]
        result = runner.invoke(cli, [*argv, "--help"])
        assert result.exit_code == 0, (name, argv, result.output)
        options = [a for a in argv if a.startswith("--")]
        for option in options:
            assert option in result.output, (name, option)


def test_environment_matches_settings():
    known = _settings_variables()
    for name, service in _compose()["services"].items():
        for variable in service.get("environment", {}) or {}:
            if variable.startswith("FORCEBOT_"):
                assert variable in known, (name, variable)
    web_env = _compose()["services"]["web"]["environment"]
    for required in ("FORCEBOT_DATABASE_URL", "FORCEBOT_REDIS_URL", "FORCEBOT_ENCRYPTION_KEYS"):
        assert required in web_env
    assert web_env["FORCEBOT_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_dockerfile_copies_every_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("forcebot", "shared", "worker", "web", "alembic"):
        assert f"COPY {package} " in dockerfile, package
