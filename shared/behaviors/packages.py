"""Packages: one YAML/JSON file holding several behaviors (and, later, schedules).

```yaml
name: salesforce-bot
description: ...
behaviors:
  - name: find-contact-by-email
    account: demo
    steps: [...]
schedules:               # created or updated by name (shared.schedules.packages)
  - {name: hourly-limits, behavior: find-contact-by-email, cron: "0 * * * *"}
```

Import validates every behavior first and saves nothing when any is invalid; problems are
prefixed with the behavior's place, `behaviors[1].steps[0].soql: required`.

Accounts: behaviors name their account, and an unknown account is a validation error, as on
every save. Because a package is written before the user has linked anything, import takes
an `account` override that replaces the top-level `account:` of every behavior in it (the
CLI's `--account NAME`, the API's `"account"` field, the page's account box). The shipped
package names `demo`, the account `forcebot up --demo` creates.

Existing behaviors change only when asked. Every behavior is compared with the stored current
version (as parsed definitions, so a reformatted file is not a change): a new name is
`created`, an equal one `unchanged`, and a different one is `updated` only with
`update=True`; without it the stored version is kept and the entry says `skipped`, with the
diff that `update=True` would apply. `dry_run=True` saves nothing and reports what the same
call would do (each entry's `version` is the version it would get). The page shows that
dry run as a confirm step; the CLI has `--dry-run` and `--update`. Schedules in a package are
created or updated by name on import (not subject to `update`); a dry run only counts them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy.orm import Session

from shared.schedules.packages import import_schedules
from shared.schedules.store import ScheduleInvalid

from .definition import ParseError, parse_source
from .store import DefinitionInvalid, check_definition, get_version, save_behavior

MAX_BEHAVIORS = 200
PACKAGE_KEYS = {"name", "description", "version", "behaviors", "schedules", "syncs"}


@dataclass
class ImportReport:
    """What an import did: one entry per behavior, plus notes."""

    behaviors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def count(self, status: str) -> int:
        return sum(1 for entry in self.behaviors if entry["status"] == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "behaviors": self.behaviors,
            "created": self.count("created"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skipped"),
            "dry_run": self.dry_run,
            "notes": self.notes,
            "schedules": self.schedules,
        }


def _behavior_source(definition: dict[str, Any]) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)


def definition_diff(old: dict[str, Any], new: dict[str, Any], name: str) -> str:
    """A unified diff between two definitions, both written the same way (YAML)."""
    lines = difflib.unified_diff(
        _behavior_source(old).splitlines(keepends=True),
        _behavior_source(new).splitlines(keepends=True),
        fromfile=f"{name} (stored)",
        tofile=f"{name} (package)",
    )
    return "".join(lines)


def package_problems(package: Any) -> list[str]:
    """Problems with the shape of a parsed package (not with the behaviors in it)."""
    if not isinstance(package, dict):
        return ["package: expected an object with a behaviors list"]
    problems = [f"{key}: unknown key" for key in package if key not in PACKAGE_KEYS]
    behaviors = package.get("behaviors")
    if not isinstance(behaviors, list) or not behaviors:
        problems.append("behaviors: expected a non-empty list of behavior definitions")
    elif len(behaviors) > MAX_BEHAVIORS:
        problems.append(f"behaviors: at most {MAX_BEHAVIORS} in one package")
    schedules = package.get("schedules")
    if schedules is not None and not isinstance(schedules, list):
        problems.append("schedules: expected a list")
    return problems


def read_package(source: str, fmt: str | None = None) -> dict[str, Any]:
    """Parse a package and check its shape; raise DefinitionInvalid."""
    try:
        package = parse_source(source, fmt)
    except ParseError as exc:
        raise DefinitionInvalid([f"source: {exc}"]) from None
    problems = package_problems(package)
    if problems:
        raise DefinitionInvalid(problems)
    return package


def import_package(
    session: Session,
    source: str,
    fmt: str | None = None,
    *,
    account: str | None = None,
    update: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Validate every behavior, then create the new ones (and, with `update`, change the
    existing ones that differ); raise DefinitionInvalid saving nothing. `dry_run` saves
    nothing and reports what would happen."""
    package = read_package(source, fmt)
    problems: list[str] = []
    prepared: list[tuple[str, dict[str, Any], str]] = []
    seen: dict[str, int] = {}
    for index, definition in enumerate(package["behaviors"]):
        where = f"behaviors[{index}]"
        if not isinstance(definition, dict):
            problems.append(f"{where}: expected a behavior definition object")
            continue
        if account:
            definition = {**definition, "account": account}
        text = _behavior_source(definition)
        try:
            checked, _ = check_definition(session, text, "yaml")
        except DefinitionInvalid as exc:
            problems.extend(f"{where}.{problem}" for problem in exc.problems)
            continue
        name = checked["name"]
        if name in seen:
            problems.append(f'{where}.name: duplicate "{name}" (also behaviors[{seen[name]}])')
            continue
        seen[name] = index
        prepared.append((name, checked, text))
    if problems:
        raise DefinitionInvalid(problems)

    report = ImportReport(dry_run=dry_run)
    for name, definition, text in prepared:
        current = get_version(session, name)
        if current is None:
            entry: dict[str, Any] = {"name": name, "status": "created", "version": 1}
        elif current.definition == definition:
            entry = {"name": name, "status": "unchanged", "version": current.version}
        else:
            entry = {
                "name": name,
                "status": "updated" if update else "skipped",
                "version": current.version + 1 if update else current.version,
                "stored_version": current.version,
                "changed_keys": sorted(
                    key
                    for key in set(current.definition) | set(definition)
                    if current.definition.get(key) != definition.get(key)
                ),
                "diff": definition_diff(current.definition, definition, name),
            }
        if not dry_run and entry["status"] in ("created", "updated"):
            _, version, _ = save_behavior(session, text, "yaml")
            entry["version"] = version.version
        report.behaviors.append(entry)
    if report.count("skipped"):
        report.notes.append(
            f"{report.count('skipped')} existing behavior(s) differ from the package and "
            "are kept as they are; import with update to change them"
        )
    schedules = package.get("schedules") or []
    if schedules and dry_run:
        # Schedules are created or updated by name on import; a dry run only counts them.
        report.notes.append(f"{len(schedules)} schedule(s) would be created or updated by name")
    elif schedules:
        # After the behaviors, in the same transaction: an entry may name one of them, and a
        # bad entry raises so the caller rolls the whole import back.
        try:
            report.schedules = import_schedules(session, schedules)
        except ScheduleInvalid as exc:
            raise DefinitionInvalid(exc.problems) from None
        report.notes.extend(f"schedule {s['name']}: {s['status']}" for s in report.schedules)
    if package.get("syncs"):
        from shared.syncs import DefinitionInvalid as SyncInvalid
        from shared.syncs.packages import import_syncs

        try:
            synced = import_syncs(
                session,
                list(package["syncs"]),
                account=account,
                update=update,
                dry_run=dry_run,
                # a dry run saved none of them, yet an on_change may name one
                package_behaviors=frozenset(name for name, _, _ in prepared),
            )
        except SyncInvalid as exc:
            raise DefinitionInvalid(exc.problems) from None
        report.notes.extend(f"sync {s['name']}: {s['status']}" for s in synced)
    return report
