"""SOQL queries over the record store: run, page by locator, and the replication windows.

``QueryEngine`` is a mixin of ``simulator.state.SimState`` on top of ``RecordStore``; it owns
``locators`` (query locator → the full result and its batch size).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from simulator import schema, soql
from simulator.errors import SfError
from simulator.ids import random_chars
from simulator.records import RecordStore
from simulator.values import fmt_dt


class QueryEngine(RecordStore):
    locators: dict[str, dict[str, Any]]

    # ------------------------------------------------------------ queries

    def run_query(
        self, text: str, include_deleted: bool, batch_size: int, version: str
    ) -> dict[str, Any]:
        with self.lock:
            try:
                query = soql.parse(text)
            except soql.SoqlError as exc:
                raise SfError(400, exc.error_code, exc.message) from None
            obj = schema.canonical_object(query.sobject)
            if obj is None:
                raise SfError(
                    400,
                    "INVALID_TYPE",
                    f"sObject type '{query.sobject}' is not supported. If you are attempting "
                    "to use a custom object, be sure to append the '__c' after the entity name.",
                )

            def resolve(name: str) -> tuple[str, str]:
                resolved = self.field_type(obj, name)
                if resolved is None:
                    raise soql.SoqlError(
                        f"No such column '{name}' on entity '{obj}'. If you are attempting to "
                        "use a custom field, be sure to append the '__c' after the custom "
                        "field name.",
                        "INVALID_FIELD",
                    )
                return resolved

            try:
                names = [resolve(f)[0] for f in query.fields]
                predicate = soql.compile_where(query.where, resolve)
                rows = [
                    r
                    for r in self.records[obj].values()
                    if (include_deleted or not r["IsDeleted"]) and predicate(r)
                ]
                if query.order_by:
                    rows = soql.sort_records(rows, query.order_by, resolve)
            except soql.SoqlError as exc:
                raise SfError(400, exc.error_code, exc.message) from None
            if query.offset:
                rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            if query.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            records = []
            for row in rows:
                item = self.to_json(obj, row, names)
                item["attributes"]["url"] = f"/services/data/v{version}/sobjects/{obj}/{row['Id']}"
                records.append(item)
            return self._page(records, 0, batch_size, version, locator=None)

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

    def updated_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            ids = [
                r["Id"]
                for r in self.records[obj].values()
                if not r["IsDeleted"] and start <= r["SystemModstamp"] <= end
            ]
            return {"ids": ids, "latestDateCovered": fmt_dt(min(end, self.now()))}

    def deleted_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            deleted = [
                {"id": r["Id"], "deletedDate": fmt_dt(r["_deleted_at"])}
                for r in self.records[obj].values()
                if r["IsDeleted"] and start <= r["_deleted_at"] <= end
            ]
            earliest = min(
                (r["CreatedDate"] for r in self.records[obj].values()), default=self.now()
            )
            return {
                "deletedRecords": deleted,
                "earliestDateAvailable": fmt_dt(earliest),
                "latestDateCovered": fmt_dt(min(end, self.now())),
            }
