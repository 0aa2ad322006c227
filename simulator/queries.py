"""SOQL queries over the record store: run, page by locator, and the replication windows.

``QueryEngine`` is a mixin of ``simulator.state.SimState`` on top of ``RecordStore``; it owns
``locators`` (query locator → the full result and its batch size).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from simulator import schema, soql
from simulator.errors import SfError
from simulator.ids import random_chars
from simulator.records import RecordStore
from simulator.soql.executor import Executor
from simulator.values import fmt_dt

REPLICATION_DAYS = 30


class QueryEngine(RecordStore):
    locators: dict[str, dict[str, Any]]
    settings: dict[str, Any]

    # ------------------------------------------------------------ queries

    def run_query(
        self, text: str, include_deleted: bool, batch_size: int, version: str
    ) -> dict[str, Any]:
        with self.lock:
            try:
                query = soql.parse(text)
                executor = Executor(self, self.soql_context(), version)
                records, total = executor.run(query, include_deleted)
            except soql.SoqlError as exc:
                raise SfError(400, exc.error_code, exc.salesforce_message(text)) from None
            if query.count_only:
                return {"totalSize": total, "done": True, "records": []}
            return self._page(records, 0, batch_size, version, locator=None)

    def soql_context(self) -> soql.Context:
        """The org's clock and time zone, for date literals."""
        zone = ZoneInfo(str(self.settings["org_time_zone"]))
        return soql.Context(today=self.now().astimezone(zone).date(), zone=zone)

    # ------------------------------------------------------------ soql.executor.Source

    def lookup(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """The live record with this id, whatever its object (found by key prefix)."""
        for obj in schema.OBJECTS:
            if record_id.startswith(schema.key_prefix(obj)):
                record = self.records[obj].get(record_id)
                if record is not None and not record["IsDeleted"]:
                    return obj, record
        return None

    def rows(self, obj: str, include_deleted: bool) -> list[dict[str, Any]]:
        return [r for r in self.records[obj].values() if include_deleted or not r["IsDeleted"]]

    def custom_field_names(self, obj: str) -> list[str]:
        return sorted(self.custom_fields[obj])

    def _page(
        self,
        records: list[dict[str, Any]],
        offset: int,
        batch_size: int,
        version: str,
        locator: str | None,
    ) -> dict[str, Any]:
        end = offset + batch_size
        body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
        if not body["done"]:
            if locator is None:
                locator = "01g" + random_chars(15)
                self.locators[locator] = {
                    "records": records,
                    "batch_size": batch_size,
                    "created": self.now(),
                }
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        elif locator is not None:
            self.locators.pop(locator, None)
        body["records"] = records[offset:end]
        return body

    def query_more(self, locator: str, offset: int, version: str) -> dict[str, Any]:
        with self.lock:
            entry = self.locators.get(locator)
            if entry is None or offset < 0 or offset > len(entry["records"]):
                raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(entry["records"], offset, entry["batch_size"], version, locator)

    def _window(self, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """Salesforce's bounds for /updated and /deleted: seconds are dropped from both ends,
        the start may be at most 30 days back, and the window covers ``[start, latest)`` where
        ``latest`` (``latestDateCovered``) is the end or, if that is later, the current minute.
        """
        start = start.replace(second=0, microsecond=0)
        end = end.replace(second=0, microsecond=0)
        now = self.now()
        if start < now - dt.timedelta(days=REPLICATION_DAYS):
            raise SfError(
                400,
                "INVALID_REPLICATION_DATE",
                f"startDate cannot be more than {REPLICATION_DAYS} days ago",
            )
        return start, min(end, now.replace(second=0, microsecond=0))

    def updated_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            start, latest = self._window(start, end)
            ids = [
                r["Id"]
                for r in self.records[obj].values()
                if not r["IsDeleted"] and start <= r["SystemModstamp"] < latest
            ]
            return {"ids": ids, "latestDateCovered": fmt_dt(latest)}

    def deleted_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            start, latest = self._window(start, end)
            deleted = [
                {"id": r["Id"], "deletedDate": fmt_dt(r["_deleted_at"])}
                for r in self.records[obj].values()
                if r["IsDeleted"] and start <= r["_deleted_at"] < latest
            ]
            earliest = min(
                (r["CreatedDate"] for r in self.records[obj].values()), default=self.now()
            )
            return {
                "deletedRecords": deleted,
                "earliestDateAvailable": fmt_dt(earliest.replace(second=0, microsecond=0)),
                "latestDateCovered": fmt_dt(latest),
            }
