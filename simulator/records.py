"""Record storage and typing: create, read, update, delete, upsert and seed sObject records.

``RecordStore`` is a mixin of ``simulator.state.SimState``: it reads ``lock``, ``ids``,
``default_user`` and ``now()`` and owns ``records`` (object → 18-character id → stored record,
values in Python types) and ``custom_fields`` (custom field names seen per object).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
from collections.abc import Callable
from typing import Any

from simulator import schema, soql
from simulator.errors import SfError
from simulator.ids import IdGenerator, is_valid_id, to18
from simulator.oauth_store import User
from simulator.values import json_value

LATEST_API_VERSION = "62.0"


class RecordStore:
    lock: threading.RLock
    ids: IdGenerator
    default_user: User
    records: dict[str, dict[str, dict[str, Any]]]
    custom_fields: dict[str, set[str]]
    custom_field_defs: dict[str, dict[str, dict[str, Any]]]
    settings: dict[str, Any]
    _case_numbers: itertools.count[int]

    now: Callable[[], dt.datetime]  # ClockAndCounters.now

    # ------------------------------------------------------------ records

    def resolve_object(self, name: str) -> str:
        obj = schema.canonical_object(name)
        if obj is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def field_type(self, obj: str, name: str) -> tuple[str, str] | None:
        fields = schema.all_fields(obj)
        for fname, ftype in fields.items():
            if fname.lower() == name.lower():
                return fname, ftype
        for fname, spec in self.custom_field_defs[obj].items():
            if fname.lower() == name.lower():
                return fname, spec["type"]
        if name.lower().endswith("__c"):
            for fname in self.custom_fields[obj]:
                if fname.lower() == name.lower():
                    return fname, "anyType"
            # Lenient by default: an unseen X__c is a new untyped field (tests write them
            # freely); with strict_custom_fields only defined ones exist, as in a real org.
            if not self.settings.get("strict_custom_fields"):
                return name, "anyType"
        return None

    def define_custom_field(self, obj: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Define (or redefine) a custom field: ``{name: "X__c", type, label?, length?,
        external_id?, unique?, required?, picklist_values?}``. Values already stored stay."""
        with self.lock:
            obj = self.resolve_object(obj)
            name = str(spec.get("name", ""))
            problems = []
            if not name.endswith("__c") or not name[:-3].replace("_", "").isalnum():
                problems.append("name must be an API name ending in __c")
            ftype = spec.get("type", "string")
            if ftype not in schema.CUSTOM_FIELD_TYPES:
                problems.append(f"type must be one of {sorted(schema.CUSTOM_FIELD_TYPES)}")
            length = spec.get("length", 255 if ftype == "string" else None)
            if ftype == "string" and not (isinstance(length, int) and 1 <= length <= 255):
                problems.append("length must be an integer from 1 to 255 for a string field")
            unknown = set(spec) - {"name", "type", "label", "length", "external_id", "unique",
                                   "required", "picklist_values"}  # fmt: skip
            if unknown:
                problems.append(f"unknown keys: {sorted(unknown)}")
            if problems:
                raise ValueError("; ".join(problems))
            definition = {
                "name": name,
                "type": ftype,
                "label": spec.get("label") or schema.field_label(name),
                "length": length if ftype == "string" else schema.field_length(name, ftype),
                "external_id": bool(spec.get("external_id", False)),
                "unique": bool(spec.get("unique", False)),
                "required": bool(spec.get("required", False)),
                "picklist_values": list(spec.get("picklist_values") or []),
            }
            self.custom_field_defs[obj][name] = definition
            self.custom_fields[obj].add(name)
            return definition

    def field_length(self, obj: str, fname: str, ftype: str) -> int:
        spec = self.custom_field_defs[obj].get(fname)
        if spec is not None:
            return int(spec["length"] or 0)
        return schema.field_length(fname, ftype)

    def find_by_external_id(self, obj: str, field: str, value: str) -> list[dict[str, Any]]:
        """The live records whose external id ``field`` equals ``value`` (404 for a field
        that cannot be an external id)."""
        with self.lock:
            obj = self.resolve_object(obj)
            resolved = self.field_type(obj, field)
            if resolved is None or (resolved[0] != "Id" and not resolved[0].endswith("__c")):
                raise SfError(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {field}",
                )
            fname = resolved[0]
            return [
                r
                for r in self.records[obj].values()
                if not r["IsDeleted"] and r.get(fname) is not None and str(r[fname]) == value
            ]

    def find_any(self, record_id: str) -> tuple[str, dict[str, Any]]:
        """(object, live record) for an id of any object, found by its key prefix."""
        with self.lock:
            for obj in schema.OBJECTS:
                if isinstance(record_id, str) and record_id.startswith(schema.key_prefix(obj)):
                    return obj, self._find(obj, record_id)
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")

    def snapshot(self) -> Any:
        """A copy of every record, for all-or-none operations to roll back to."""
        with self.lock:
            return copy.deepcopy(self.records), copy.deepcopy(self.custom_fields)

    def restore(self, snap: Any) -> None:
        with self.lock:
            self.records, self.custom_fields = snap

    def check_writable_object(self, obj: str) -> str:
        """The canonical object name, or 400 for objects the REST API may only read."""
        obj = self.resolve_object(obj)
        if schema.OBJECTS[obj].get("read_only"):
            raise SfError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {obj} does not support this operation in the simulator",
            )
        return obj

    def _convert(self, obj: str, fname: str, ftype: str, value: Any) -> Any:
        if value is None:
            return False if ftype == "boolean" else None
        bad = SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {ftype} from {type(value).__name__} value "
            f"{value!r} for field {fname}",
        )
        if ftype == "anyType":
            if isinstance(value, (dict, list)):
                raise bad
            return value
        if ftype == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if ftype == "datetime":
            if not isinstance(value, str):
                raise bad
            try:
                return soql.parse_datetime(value)
            except ValueError:
                raise bad from None
        if ftype == "date":
            if not isinstance(value, str):
                raise bad
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                raise bad from None
        if ftype in ("double", "int", "currency", "percent"):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, (int, float)):
                return value
            if isinstance(value, str):
                try:
                    return float(value) if "." in value else int(value)
                except ValueError:
                    raise bad from None
            raise bad
        if ftype in ("reference", "id"):
            if value == "":
                return None
            targets = schema.reference_targets(fname)
            prefixes = tuple(schema.key_prefix(t) for t in targets)
            if not is_valid_id(value) or (prefixes and not value.startswith(prefixes)):
                label = f"{targets[0]} ID" if len(targets) == 1 else "ID"
                raise SfError(
                    400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [fname]
                )
            return to18(value)
        if isinstance(value, (dict, list)):
            raise bad
        if isinstance(value, bool):
            value = "true" if value else "false"
        text = str(value)
        limit = self.field_length(obj, fname, ftype)
        if limit and len(text) > limit:
            raise SfError(
                400,
                "STRING_TOO_LONG",
                f"{schema.field_label(fname)}: data value too large: {text[:40]} "
                f"(max length={limit})",
                [fname],
            )
        return text

    def _apply_fields(
        self, obj: str, record: dict[str, Any], body: dict[str, Any], creating: bool
    ) -> None:
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes":
                continue
            resolved = self.field_type(obj, key)
            if resolved is None:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {obj}",
                    [key],
                )
            fname, ftype = resolved
            if not schema.writable(obj, fname) and not fname.endswith("__c"):
                raise SfError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {'create' if creating else 'update'} fields: {fname}. Please "
                    "check the security settings of this field and verify that it is "
                    "read/write for your profile or permission set.",
                    [fname],
                )
            if fname.endswith("__c"):
                self.custom_fields[obj].add(fname)
            changes[fname] = self._convert(obj, fname, ftype, value)
        merged = {**record, **changes}
        required = schema.OBJECTS[obj]["required"] + [
            name for name, spec in self.custom_field_defs[obj].items() if spec["required"]
        ]
        missing = [f for f in required if merged.get(f) in (None, "")]
        for name, spec in self.custom_field_defs[obj].items():
            value = changes.get(name)
            if (
                spec["unique"]
                and value is not None
                and any(
                    r.get(name) == value and r["Id"] != record["Id"] and not r["IsDeleted"]
                    for r in self.records[obj].values()
                )
            ):
                raise SfError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on another record",
                    [name],
                )
        if missing:
            raise SfError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        record.update(changes)
        self._compute(obj, record)

    def _compute(self, obj: str, record: dict[str, Any]) -> None:
        if obj in ("Contact", "Lead", "User"):
            record["Name"] = " ".join(
                p for p in (record.get("FirstName"), record.get("LastName")) if p
            )
        elif obj == "Case":
            record["IsClosed"] = record.get("Status") == "Closed"
        elif obj == "Opportunity":
            stage = record.get("StageName") or ""
            record["IsClosed"] = stage.startswith("Closed")
            record["IsWon"] = stage == "Closed Won"
        elif obj == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"

    def _blank(self, obj: str, stamp: dt.datetime) -> dict[str, Any]:
        record: dict[str, Any] = {
            name: (False if ftype == "boolean" else None)
            for name, ftype in schema.all_fields(obj).items()
        }
        record.update(schema.OBJECTS[obj].get("defaults", {}))
        record.update(
            {
                "Id": self.ids.new(schema.key_prefix(obj)),
                "IsDeleted": False,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "CreatedById": self.default_user.user_id,
                "LastModifiedById": self.default_user.user_id,
                "OwnerId": self.default_user.user_id,
            }
        )
        if schema.OBJECTS[obj].get("no_owner"):
            record.pop("OwnerId")
        if obj == "Case":
            record["CaseNumber"] = f"{next(self._case_numbers):08d}"
        return record

    def create_record(
        self, obj: str, body: dict[str, Any], stamp: dt.datetime | None = None
    ) -> str:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._blank(obj, stamp or self.now())
            self._apply_fields(obj, record, body, creating=True)
            self.records[obj][record["Id"]] = record
            return record["Id"]

    def _find(self, obj: str, record_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        try:
            full = to18(record_id)
        except ValueError:
            full = None
        record = self.records[obj].get(full) if full else None
        if record is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if record["IsDeleted"] and not allow_deleted:
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def get_record(
        self, obj: str, record_id: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            names = None
            if fields:
                names = []
                for name in fields:
                    resolved = self.field_type(obj, name)
                    if resolved is None:
                        raise SfError(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{name}' on sobject of type {obj}",
                        )
                    names.append(resolved[0])
            return self.to_json(obj, record, names)

    def update_record(
        self, obj: str, record_id: str, body: dict[str, Any], stamp: dt.datetime | None = None
    ) -> None:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            staged = dict(record)
            self._apply_fields(obj, staged, body, creating=False)
            stamp = stamp or self.now()
            staged["LastModifiedDate"] = stamp
            staged["SystemModstamp"] = stamp
            record.update(staged)

    def delete_record(self, obj: str, record_id: str, stamp: dt.datetime | None = None) -> None:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            stamp = stamp or self.now()
            record["IsDeleted"] = True
            record["LastModifiedDate"] = stamp
            record["SystemModstamp"] = stamp
            record["_deleted_at"] = stamp

    def upsert_record(
        self, obj: str, ext_field: str, value: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """Upsert by external id; returns (id, created)."""
        with self.lock:
            obj = self.resolve_object(obj)
            resolved = self.field_type(obj, ext_field)
            if resolved is None or (resolved[0] != "Id" and not resolved[0].endswith("__c")):
                raise SfError(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {ext_field}",
                )
            fname = resolved[0]
            if fname == "Id":
                if value:
                    self.update_record(obj, value, body)
                    return to18(value), False
                return self.create_record(obj, body), True
            matches = [
                r
                for r in self.records[obj].values()
                if not r["IsDeleted"] and r.get(fname) is not None and str(r[fname]) == value
            ]
            if len(matches) > 1:
                raise SfError(
                    300,
                    "MULTIPLE_CHOICES",
                    f"More than one record found for external id field {fname} with value {value}",
                )
            payload = {k: v for k, v in body.items() if k.lower() != fname.lower()}
            if matches:
                self.update_record(obj, matches[0]["Id"], payload)
                return matches[0]["Id"], False
            self.custom_fields[obj].add(fname)
            return self.create_record(obj, {**payload, fname: value}), True

    def to_json(
        self, obj: str, record: dict[str, Any], names: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{LATEST_API_VERSION}/sobjects/{obj}/{record['Id']}",
            }
        }
        if names is None:
            names = [k for k in record if not k.startswith("_")]
        for name in names:
            out[name] = json_value(record.get(name))
        return out

    def seed(
        self,
        obj: str,
        count: int,
        per_timestamp: int = 1,
        fields: dict[str, Any] | None = None,
        start: dt.datetime | None = None,
    ) -> list[str]:
        """Create ``count`` records, ``per_timestamp`` of them sharing each SystemModstamp (one
        second apart, in the past unless ``start`` is given). String values in ``fields`` may
        use ``{n}`` for the record's number (0-based)."""
        with self.lock:
            obj = self.resolve_object(obj)
            per_timestamp = max(1, int(per_timestamp))
            groups = (count + per_timestamp - 1) // per_timestamp
            if start is None:
                start = self.now().replace(microsecond=0) - dt.timedelta(seconds=groups + 1)
            ids = []
            for n in range(count):
                values = _default_seed_fields(obj, n)
                for key, value in (fields or {}).items():
                    values[key] = value.format(n=n) if isinstance(value, str) else value
                stamp = start + dt.timedelta(seconds=n // per_timestamp)
                ids.append(self.create_record(obj, values, stamp=stamp))
            return ids

    def all_records(self, obj: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            obj = self.resolve_object(obj)
            return [
                self.to_json(obj, r)
                for r in self.records[obj].values()
                if include_deleted or not r["IsDeleted"]
            ]


def _default_seed_fields(obj: str, n: int) -> dict[str, Any]:
    if obj == "Account":
        return {"Name": f"Seed Account {n}"}
    if obj == "Contact":
        return {"FirstName": "Seed", "LastName": f"Contact {n}", "Email": f"seed{n}@example.com"}
    if obj == "Lead":
        return {"LastName": f"Lead {n}", "Company": f"Seed Co {n}", "Email": f"lead{n}@example.com"}
    if obj == "Case":
        return {"Subject": f"Seed case {n}"}
    if obj == "Opportunity":
        return {
            "Name": f"Seed Opportunity {n}",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
        }
    return {}
