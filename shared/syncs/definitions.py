"""Sync definitions: the pydantic bodies, checks against the account's describe, the JSON.

What is checked on save (every problem listed, nothing saved on any): the body's shape and
types (pydantic); exactly one of `cron` / `every_seconds` or neither (a sync without a
schedule runs on demand only); the cron expression (croniter) and the IANA zone; the account
exists; `on_change` names a stored or Python behavior; and `object` and `fields` exist in the
account's `describe` of that object, which is cached in Redis for `DESCRIBE_TTL` seconds.
One sync per account and object (the records table keeps one copy of each record).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.behaviors.store import load_behavior
from shared.models import Account, Run, Sync, isoformat
from shared.salesforce import SalesforceClient, errors
from shared.validation import integral, problems_of

from .schedule import schedule_sync
from .store import ALWAYS

if TYPE_CHECKING:
    from shared.runtime import Runtime

DESCRIBE_TTL = 600
Describe = Callable[[int, str], "dict[str, str] | None"]


# Every string is constrained so that the document states what the server accepts: no NUL
# (PostgreSQL refuses it in text), ids within an INTEGER column.
_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"
_API_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
_TEXT = r"^[^\x00]*$"
_MAX_INT = 2**31 - 1
FieldName = Annotated[str, Field(min_length=1, max_length=80, pattern=_API_NAME)]
# JSON's 50000.0 is the integer 50000 (JSON Schema's integer includes it); 2.5 is refused.
_Id = Annotated[int, Field(ge=1, le=_MAX_INT), BeforeValidator(integral)]
_Every = Annotated[int, Field(ge=60, le=31 * 24 * 3600), BeforeValidator(integral)]
_Lookback = Annotated[int, Field(ge=0, le=7 * 24 * 3600), BeforeValidator(integral)]


class SyncBody(BaseModel):
    """POST /syncs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=100, pattern=_NAME)
    account_id: _Id
    object: str = Field(min_length=1, max_length=80, pattern=_API_NAME)
    fields: list[FieldName] = Field(default_factory=list, max_length=500)
    cron: str | None = Field(default=None, max_length=100, pattern=_TEXT)
    every_seconds: _Every | None = None
    timezone: str = Field(default="UTC", max_length=64, pattern=_TEXT)
    enabled: bool = True
    api: Literal["auto", "rest", "bulk"] = "auto"
    bulk_threshold: _Id = 50000
    lookback_seconds: _Lookback = 0
    on_change: str | None = Field(default=None, max_length=100, pattern=_TEXT)


class SyncPatch(BaseModel):
    """PATCH /syncs/<id>: any subset of the fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=_NAME)
    account_id: _Id | None = None
    object: str | None = Field(default=None, pattern=_API_NAME, max_length=80)
    fields: list[FieldName] | None = Field(default=None, max_length=500)
    cron: str | None = Field(default=None, max_length=100, pattern=_TEXT)
    every_seconds: _Every | None = None
    timezone: str | None = Field(default=None, max_length=64, pattern=_TEXT)
    enabled: bool | None = None
    api: Literal["auto", "rest", "bulk"] | None = None
    bulk_threshold: _Id | None = None
    lookback_seconds: _Lookback | None = None
    on_change: str | None = Field(default=None, max_length=100, pattern=_TEXT)


class DefinitionInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe_fields(runtime: Runtime, account_id: int, obj: str) -> dict[str, str] | None:
    """{field name: type} of the object for the account, or None when it has no such object."""
    key = f"forcebot:describe:{account_id}:{obj.lower()}"
    cached = runtime.redis.get(key)
    if cached is not None:
        value = json.loads(cached)
        return value if isinstance(value, dict) else None
    client = SalesforceClient.for_account(runtime, account_id, purpose="trigger")
    response = client.request(
        "GET", f"{client.base_path}/sobjects/{obj}/describe", raise_for_status=False
    )
    if response.status_code == 404:
        fields = None
    elif response.status_code >= 400:
        raise errors.SalesforceError.from_response(response)
    else:
        fields = {f["name"]: f.get("type", "string") for f in response.json().get("fields", [])}
    runtime.redis.set(key, json.dumps(fields), ex=DESCRIBE_TTL)
    return fields


@dataclass
class Described:
    """The describe answer fetched before any database work (see `_describe_first`)."""

    fields: dict[str, str] | None = None
    error: str | None = None
    unchecked: bool = False  # no describe to check against (see shared.syncs.packages)


def _describe_first(describe: Describe, values: dict[str, Any]) -> Described:
    """Ask Salesforce before the caller's session opens a transaction.

    On SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and the client writes
    token and usage rows in its own sessions; asking while our transaction is open would wait
    on ourselves.
    """
    try:
        return Described(describe(values["account_id"], values["object"]))
    except errors.SalesforceError as exc:
        return Described(error=exc.message)
    except LookupError as exc:
        return Described(error=str(exc))


def check(
    session: Session, values: dict[str, Any], described: Described, sync_id: int | None
) -> list[str]:
    """Every problem of a complete definition (after pydantic), in field order."""
    problems: list[str] = []
    if values.get("cron") and values.get("every_seconds"):
        problems.append("cron: give cron or every_seconds, not both")
    if values.get("cron") and not croniter.is_valid(values["cron"]):
        problems.append(f"cron: {values['cron']!r} is not a valid cron expression")
    try:
        ZoneInfo(values.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: {values.get('timezone')!r} is not an IANA time zone")
    same_name = session.scalar(select(Sync.id).where(Sync.name == values["name"]))
    if same_name is not None and same_name != sync_id:
        problems.append(f"name: a sync named {values['name']!r} exists (id {same_name})")
    if values.get("on_change") and load_behavior(session, values["on_change"]) is None:
        problems.append(f"on_change: no behavior named {values['on_change']!r}")
    account = session.get(Account, values["account_id"])
    if account is None:
        problems.append(f"account_id: no account {values['account_id']}")
        return problems
    other = session.scalar(
        select(Sync.id).where(Sync.account_id == account.id, Sync.object == values["object"])
    )
    if other is not None and other != sync_id:
        problems.append(
            f"object: this account already has a sync of {values['object']} (id {other})"
        )
    if described.unchecked:
        return problems
    if described.error is not None:
        problems.append(f"object: could not describe {values['object']}: {described.error}")
        return problems
    known = described.fields
    if known is None:
        problems.append(f"object: unknown object {values['object']!r}")
        return problems
    unknown = [f for f in values.get("fields") or [] if f not in known]
    if unknown:
        problems.append(f"fields: unknown fields on {values['object']}: {', '.join(unknown)}")
    return problems


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    fields: list[str] = []
    for name in values.get("fields") or []:
        if name not in fields and name not in ALWAYS:
            fields.append(name)
    return {**values, "fields": fields}


def create_sync(session: Session, body: Any, describe: Describe) -> Sync:
    try:
        parsed = SyncBody.model_validate(body)
    except ValidationError as exc:
        raise DefinitionInvalid(problems_of(exc)) from None
    values = _normalise(parsed.model_dump())
    described = _describe_first(describe, values)
    problems = check(session, values, described, None)
    if problems:
        raise DefinitionInvalid(problems)
    sync = Sync(**values)
    schedule_sync(sync)
    session.add(sync)
    session.flush()
    return sync


def update_sync(session: Session, sync: Sync, body: Any, describe: Describe) -> Sync:
    """Apply a PATCH; commits the session's read transaction before asking Salesforce."""
    try:
        parsed = SyncPatch.model_validate(body)
    except ValidationError as exc:
        raise DefinitionInvalid(problems_of(exc)) from None
    changes = parsed.model_dump(exclude_unset=True)
    nullable = {"cron", "every_seconds", "on_change"}
    bad = [f"{k}: must not be null" for k, v in changes.items() if v is None and k not in nullable]
    if bad:
        raise DefinitionInvalid(bad)
    values = _normalise({c: getattr(sync, c) for c in SyncBody.model_fields} | changes)
    if "cron" in changes and changes["cron"]:
        values["every_seconds"] = changes.get("every_seconds")
    if "every_seconds" in changes and changes["every_seconds"]:
        values["cron"] = changes.get("cron")
    session.commit()  # ends the read; nothing is written yet (see _describe_first)
    described = _describe_first(describe, values)
    problems = check(session, values, described, sync.id)
    if problems:
        raise DefinitionInvalid(problems)
    for key, value in values.items():
        setattr(sync, key, value)
    if {"cron", "every_seconds", "timezone", "enabled"} & set(changes):
        schedule_sync(sync)
    session.flush()
    return sync


def sync_to_dict(session: Session, sync: Sync) -> dict[str, Any]:
    """SPEC's sync JSON: the definition, cursor, record counts, last run and live progress."""
    from .runs import active_run

    data: dict[str, Any] = {"id": sync.id, **{c: getattr(sync, c) for c in SyncBody.model_fields}}
    data["cursor"] = (
        {"system_modstamp": isoformat(sync.watermark_modstamp), "id": sync.watermark_id}
        if sync.watermark_modstamp
        else None
    )
    data["records"] = {"total": sync.records_total, "deleted": sync.records_deleted}
    last = session.get(Run, sync.last_run_id) if sync.last_run_id else None
    data["last_run"] = (
        {
            "id": last.id,
            "status": last.status,
            "at": isoformat(last.finished_at or last.started_at or last.created_at),
            "counts": {
                k: (last.progress or {}).get(k)
                for k in ("pages", "records", "created", "updated", "deleted", "total_size", "api")
            },
        }
        if last
        else None
    )
    running = active_run(session, sync.id)
    data["running"] = (
        {"run_id": running.id, "status": running.status, **(running.progress or {})}
        if running
        else None
    )
    data["next_run_at"] = isoformat(sync.next_run_at)
    data["created_at"] = isoformat(sync.created_at)
    data["updated_at"] = isoformat(sync.updated_at)
    return data


def count_syncs(session: Session) -> int:
    return int(session.scalar(select(func.count(Sync.id))) or 0)
