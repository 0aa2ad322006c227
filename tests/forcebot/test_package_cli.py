"""`forcebot package import` and `forcebot behavior validate`."""

from pathlib import Path

from click.testing import CliRunner

from forcebot.cli import cli
from tests.conftest import settings_env
from tests.shared.behaviors.fakes import add_account, behavior_counts

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "salesforce-bot.yaml"


def _run(settings, *args):
    return CliRunner(env=settings_env(settings)).invoke(cli, list(args))


def test_import_the_shipped_package(settings, runtime):
    add_account(runtime, "demo")
    result = _run(settings, "package", "import", str(PACKAGE))
    assert result.exit_code == 0, result.output
    assert "created  find-contact-by-email (version 1)" in result.output
    assert "5 created, 0 updated, 0 unchanged, 0 skipped" in result.output
    again = _run(settings, "package", "import", str(PACKAGE))
    assert "0 created, 0 updated, 5 unchanged, 0 skipped" in again.output
    assert behavior_counts(runtime) == (5, 5)


def test_account_override(settings, runtime):
    add_account(runtime, "acme-prod")
    missing = _run(settings, "package", "import", str(PACKAGE))
    assert missing.exit_code == 2
    assert 'behaviors[0].account: unknown account "demo"' in missing.output
    assert "nothing was imported" in missing.output
    result = _run(settings, "package", "import", str(PACKAGE), "--account", "acme-prod")
    assert result.exit_code == 0, result.output
    assert behavior_counts(runtime) == (5, 5)


def _current_account(runtime, name):
    from shared.behaviors.store import get_version

    with runtime.Session() as session:
        version = get_version(session, name)
        return version.version, version.definition["account"]


def test_import_with_another_account_changes_nothing_without_update(settings, runtime):
    add_account(runtime, "demo")
    add_account(runtime, "acme-prod")
    assert _run(settings, "package", "import", str(PACKAGE)).exit_code == 0

    plain = _run(settings, "package", "import", str(PACKAGE), "--account", "acme-prod")
    assert plain.exit_code == 0, plain.output
    assert "skipped  find-contact-by-email (version 1)" in plain.output
    assert "-account: demo" in plain.output and "+account: acme-prod" in plain.output
    assert "0 created, 0 updated, 0 unchanged, 5 skipped" in plain.output
    assert _current_account(runtime, "find-contact-by-email") == (1, "demo")

    dry = _run(
        settings,
        "package",
        "import",
        str(PACKAGE),
        "--account",
        "acme-prod",
        "--update",
        "--dry-run",
    )
    assert dry.exit_code == 0, dry.output
    assert "would be   updated  find-contact-by-email (version 2)" in dry.output
    assert "dry run, nothing saved: 0 created, 5 updated" in dry.output
    assert behavior_counts(runtime) == (5, 5)

    updated = _run(
        settings, "package", "import", str(PACKAGE), "--account", "acme-prod", "--update"
    )
    assert "0 created, 5 updated, 0 unchanged, 0 skipped" in updated.output
    assert _current_account(runtime, "find-contact-by-email") == (2, "acme-prod")
    assert behavior_counts(runtime) == (5, 10)


def test_invalid_package_lists_every_problem_and_saves_nothing(settings, runtime, tmp_path):
    add_account(runtime, "demo")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "behaviors:\n"
        "  - name: ok-one\n    account: demo\n    steps: [{id: a, action: set, vars: {x: 1}}]\n"
        "  - name: broken\n    steps:\n      - {id: q, action: salesforce.query}\n"
        "      - {id: q, action: nope}\n"
    )
    result = _run(settings, "package", "import", str(bad))
    assert result.exit_code == 2
    assert "behaviors[1].steps[0].soql: required" in result.output
    assert 'behaviors[1].steps[1].id: duplicate "q" (also steps[0])' in result.output
    assert 'behaviors[1].steps[1].action: unknown action "nope"' in result.output
    assert "Traceback" not in result.output
    assert behavior_counts(runtime) == (0, 0)


def test_missing_file(settings):
    result = _run(settings, "package", "import", "/nonexistent/p.yaml")
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_behavior_validate(settings, tmp_path):
    assert _run(settings, "behavior", "validate", str(PACKAGE)).exit_code == 0
    bad = tmp_path / "b.json"
    bad.write_text('{"name": "x", "steps": [{"id": "a", "action": "fail"}]}')
    result = _run(settings, "behavior", "validate", str(bad))
    assert result.exit_code == 2
    assert "steps[0].message: required" in result.output
