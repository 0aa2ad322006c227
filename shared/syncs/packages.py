"""The `syncs:` entries of a behavior package: created or updated by name.

An entry is a sync definition whose account is given by name (`account: demo`, replaced by
the import's `--account` like the behaviors'). Called by `import_package` after the
behaviors and schedules, in the same session, so `on_change` may name a behavior of the same
package. Every entry is validated (shape, account, on_change, one sync per account and
object) before any is saved; problems are prefixed `syncs[<i>].`.

Chosen here: `object` and `fields` are checked against the account's describe only when a
describe of that object is already cached. An import runs inside one transaction, and asking
Salesforce from inside it would hold SQLite's write lock while the client writes its own token
and usage rows; an unknown field then fails the sync's first run with Salesforce's own
INVALID_FIELD message instead of failing the import.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Account, Sync
from shared.validation import problems_of

from .definitions import (
    DefinitionInvalid,
    Described,
    SyncBody,
    _normalise,
    check,
)
from .schedule import schedule_sync

if TYPE_CHECKING:
    import redis

MAX_SYNCS = 50


def _cached_describe(cache: redis.Redis | None, account_id: int, obj: str) -> Described:
    if cache is None:
        return Described(fields=None, error=None, unchecked=True)
    raw = cache.get(f"forcebot:describe:{account_id}:{obj.lower()}")
    if raw is None:
        return Described(fields=None, error=None, unchecked=True)
    value = json.loads(raw)
    return Described(fields=value if isinstance(value, dict) else None)


def import_syncs(
    session: Session,
    entries: list[Any],
    *,
    account: str | None = None,
    cache: redis.Redis | None = None,
    update: bool = False,
    dry_run: bool = False,
    package_behaviors: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Validate every entry, then create them (or, with `update`, change those that differ;
    without it a differing sync of that name is "skipped" and kept); raise DefinitionInvalid
    saving none. `dry_run` saves nothing and reports what would happen; `on_change` may name
    one of `package_behaviors` (the importing package's, which a dry run has not saved)."""
    if len(entries) > MAX_SYNCS:
        raise DefinitionInvalid([f"syncs: at most {MAX_SYNCS} in one package"])
    problems: list[str] = []
    prepared: list[tuple[dict[str, Any], Sync | None]] = []
    for index, entry in enumerate(entries):
        where = f"syncs[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a sync object")
            continue
        data = dict(entry)
        name = account or data.pop("account", None)
        data.pop("account", None)
        account_id = session.scalar(select(Account.id).where(Account.name == name))
        if account_id is None:
            problems.append(f"{where}.account: no connected account named {name!r}")
            continue
        data["account_id"] = account_id
        try:
            values = _normalise(SyncBody.model_validate(data).model_dump())
        except ValidationError as exc:
            problems.extend(problems_of(exc, prefix=where))
            continue
        existing = session.scalar(select(Sync).where(Sync.name == values["name"]))
        if existing is not None and not update:
            prepared.append((values, existing))
            continue
        described = _cached_describe(cache, account_id, values["object"])
        found = check(session, values, described, existing.id if existing else None)
        if values.get("on_change") in package_behaviors:
            found = [p for p in found if not p.startswith("on_change: no behavior named")]
        if found:
            problems.extend(f"{where}.{p}" for p in found)
            continue
        prepared.append((values, existing))
    if problems:
        raise DefinitionInvalid(problems)
    report = []
    for values, existing in prepared:
        if existing is None:
            status = "created"
            if not dry_run:
                sync = Sync(**values)
                schedule_sync(sync)
                session.add(sync)
        elif all(getattr(existing, k) == v for k, v in values.items()):
            status = "unchanged"
        elif not update:
            status = "skipped"
        else:
            status = "updated"
            if not dry_run:
                for key, value in values.items():
                    setattr(existing, key, value)
                schedule_sync(existing)
        report.append({"name": values["name"], "status": status})
    session.flush()
    return report
