"""`forcebot package import FILE` and `forcebot behavior validate FILE`."""

from __future__ import annotations

from pathlib import Path

import click

from forcebot.cli import checked_database, cli, fail, load_settings


def _read(path: str) -> tuple[str, str | None]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
    suffix = Path(path).suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None
    return text, fmt


def _report_problems(path: str, problems: list[str], what: str) -> None:
    click.echo(f"{path}: {len(problems)} problem(s); {what}", err=True)
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    raise SystemExit(2)


@cli.group()
def package() -> None:
    """Packages of behaviors."""


@package.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--account",
    metavar="NAME",
    help="Run every behavior of the package on this connected account.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change (with diffs); save nothing.")
@click.option("--update", is_flag=True, help="Also change existing behaviors that differ.")
def package_import(file: str, account: str | None, dry_run: bool, update: bool) -> None:
    """Import a package of behaviors (YAML/JSON); an invalid package imports nothing.

    New behaviors are created; existing ones that differ are kept (and listed as skipped,
    with their diff) unless --update is given."""
    from shared.behaviors.packages import import_package
    from shared.behaviors.store import DefinitionInvalid
    from shared.runtime import Runtime

    source, fmt = _read(file)
    settings = load_settings()
    checked_database(settings)
    runtime = Runtime(settings)
    try:
        with runtime.Session.begin() as session:
            report = import_package(
                session, source, fmt, account=account, update=update, dry_run=dry_run
            )
    except DefinitionInvalid as exc:
        _report_problems(file, exc.problems, "nothing was imported")
    finally:
        runtime.close()
    would = "would be " if dry_run else ""
    for entry in report.behaviors:
        status = entry["status"]
        click.echo(f"{would}{status:>9}  {entry['name']} (version {entry['version']})")
        if entry.get("diff") and (dry_run or status == "skipped"):
            click.echo(entry["diff"].rstrip("\n"))
    summary = report.to_dict()
    click.echo(
        f"{'dry run, nothing saved: ' if dry_run else ''}"
        f"{summary['created']} created, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged, {summary['skipped']} skipped"
    )
    for note in report.notes:
        click.echo(f"note: {note}")


@cli.group()
def behavior() -> None:
    """Behavior definitions."""


@behavior.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def behavior_validate(file: str) -> None:
    """Check a definition (or a package) without the database; exit 2 listing every problem."""
    from shared.behaviors.definition import ParseError, parse_source, validate_definition
    from shared.behaviors.packages import package_problems

    source, fmt = _read(file)
    try:
        parsed = parse_source(source, fmt)
    except ParseError as exc:
        _report_problems(file, [f"source: {exc}"], "not valid")
    if isinstance(parsed, dict) and "behaviors" in parsed:
        problems = package_problems(parsed)
        for index, item in enumerate(parsed.get("behaviors") or []):
            problems += [f"behaviors[{index}].{p}" for p in validate_definition(item)]
        count = len(parsed.get("behaviors") or [])
    else:
        problems = validate_definition(parsed)
        count = 1
    if problems:
        _report_problems(file, problems, "not valid")
    click.echo(f"{file}: {count} behavior(s) valid (accounts are checked on import)")
