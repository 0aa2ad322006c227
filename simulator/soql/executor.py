"""Run a parsed query against a record source: relationships, subqueries, aggregates, output.

``Source`` is what the executor needs from the store (``simulator.queries`` implements it). The
result is the list of records as Salesforce's JSON writes them: parent relationship fields
nested under the relationship name (``{"Account": {"attributes": ..., "Name": ...}}``, or
``null`` when the reference is empty), child subqueries as ``{totalSize, done, records}`` (or
``null`` when there are no children), and aggregate queries as ``AggregateResult`` records whose
unaliased aggregates are named ``expr0``, ``expr1``, ... in SELECT order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, overload

from simulator import schema
from simulator.soql.errors import SoqlError
from simulator.soql.evaluator import (
    NUMERIC,
    Context,
    Ref,
    compile_where,
    date_function,
    norm,
    sort_rows,
)
from simulator.soql.parser import (
    Aggregate,
    Comparison,
    FieldPath,
    FieldsFunction,
    OrderItem,
    Query,
    SubQuery,
)
from simulator.values import json_value

Record = dict[str, Any]
_WSDL = " Please reference your WSDL or the describe call for the appropriate names."
FIELDS_LIMIT = 200


class Source(Protocol):
    def field_type(self, obj: str, name: str) -> tuple[str, str] | None: ...
    def lookup(self, record_id: str) -> tuple[str, Record] | None: ...
    def rows(self, obj: str, include_deleted: bool) -> list[Record]: ...
    def custom_field_names(self, obj: str) -> list[str]: ...


def _no_column(name: str, obj: str, pos: int) -> SoqlError:
    return SoqlError(
        f"No such column '{name}' on entity '{obj}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name." + _WSDL,
        "INVALID_FIELD",
        pos,
    )


# A result of more rows than this is turned into JSON page by page as its pages are served,
# so a 1,000,000-record queryAll costs its filter and sort, not a million dicts at once. The
# price: a record changed between the query and the serving of its page shows the change;
# smaller results stay a snapshot taken at query time.
LAZY_ROWS = 50_000


class _Projected(Sequence[Record]):
    """Rows (already filtered and ordered) projected to JSON when a slice is read."""

    def __init__(self, rows: list[Record], project: Callable[[Record], Record]) -> None:
        self.rows, self.project = rows, project

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self.project(row) for row in self.rows[index]]
        return self.project(self.rows[index])


class Executor:
    def __init__(self, source: Source, ctx: Context, version: str) -> None:
        self.source = source
        self.ctx = ctx
        self.version = version
        ctx.semi_join = self._semi_join
        self._include_deleted = False

    # ------------------------------------------------------------ resolution

    def resolve_object(self, query: Query) -> str:
        obj = schema.canonical_object(query.sobject)
        if obj is None:
            raise SoqlError(
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use "
                "a custom object, be sure to append the '__c' after the entity name." + _WSDL,
                "INVALID_TYPE",
                query.sobject_pos,
            )
        return obj

    def resolve(
        self, obj: str, path: str, pos: int, function: str | None = None, local: bool = False
    ) -> Ref:
        """Resolve ``Name`` / ``Account.Name`` / ``Account.Owner.Email`` from ``obj``, wrapped
        in a date function (``CALENDAR_YEAR(CreatedDate)``) when one is given."""
        if function is not None:
            base = self.resolve(obj, path, pos)
            return date_function(function, base, self.ctx.zone if local else None, pos)
        parts = path.split(".")
        if len(parts) > 1 and parts[0].lower() == obj.lower():
            parts = parts[1:]
        hops: list[tuple[str, str]] = []
        key: list[str] = []
        targets = [obj]
        for part in parts[:-1]:
            found = None
            for target in targets:
                found = schema.parent_relationship(target, part)
                if found:
                    break
            if found is None:
                raise SoqlError(
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name." + _WSDL,
                    "INVALID_FIELD",
                    pos,
                )
            ref_field, targets = found
            rel = schema.relationship_name(ref_field) or part
            hops.append((ref_field, rel))
            key.append(rel)
        last = parts[-1]
        resolved = None
        for target in targets:
            resolved = self.source.field_type(target, last)
            if resolved:
                break
        if resolved is None:
            raise _no_column(last, targets[0], pos)
        name, ftype = resolved
        key.append(name)
        lookup = self.source.lookup

        def get(record: Record | None) -> Any:
            for ref_field, _rel in hops:
                if record is None:
                    return None
                parent_id = record.get(ref_field)
                found = lookup(parent_id) if parent_id else None
                record = found[1] if found else None
            return None if record is None else record.get(name)

        return Ref(name=name, ftype=ftype, get=get, hops=hops, key=tuple(key))

    def _expand(self, obj: str, query: Query) -> list[Any]:
        items: list[Any] = []
        for item in query.items:
            if not isinstance(item, FieldsFunction):
                items.append(item)
                continue
            if item.kind != "STANDARD" and (query.limit is None or query.limit > FIELDS_LIMIT):
                raise SoqlError(
                    f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}",
                    pos=item.pos,
                )
            names: list[str] = []
            if item.kind in ("STANDARD", "ALL"):
                names += list(schema.all_fields(obj))
            if item.kind in ("CUSTOM", "ALL"):
                names += self.source.custom_field_names(obj)
            items += [FieldPath(n, item.pos) for n in names]
        return items

    # ------------------------------------------------------------ running

    def run(self, query: Query, include_deleted: bool) -> tuple[Sequence[Record], int]:
        """(records as JSON, totalSize); COUNT() queries return no records."""
        self._include_deleted = include_deleted
        obj = self.resolve_object(query)
        items = self._expand(obj, query)
        where = self._where(obj, query)
        rows = [r for r in self.source.rows(obj, include_deleted) if where(r)]
        if query.is_aggregate:
            return self._aggregate(obj, query, items, rows)
        plan = [self._plan_item(obj, item) for item in items]
        rows = self._order_and_slice(obj, query, rows)
        if query.count_only:
            return [], len(rows)
        if len(rows) > LAZY_ROWS:
            return _Projected(rows, lambda row: self._to_json(obj, row, plan)), len(rows)
        return [self._to_json(obj, row, plan) for row in rows], len(rows)

    def _where(self, obj: str, query: Query) -> Callable[[Record], bool]:
        def resolve(cmp: Comparison) -> Ref:
            if cmp.aggregate is not None:
                raise SoqlError(
                    "Aggregate functions are not supported in the WHERE clause", pos=cmp.pos
                )
            return self.resolve(obj, cmp.field, cmp.pos, cmp.function, cmp.local)

        return compile_where(query.where, resolve, self.ctx)

    def _order_and_slice(self, obj: str, query: Query, rows: list[Record]) -> list[Record]:
        if query.order_by:
            keys = []
            for item in query.order_by:
                if item.aggregate is not None:
                    raise SoqlError("Aggregate ordering needs GROUP BY", pos=item.pos)
                ref = self.resolve(obj, item.field, item.pos, item.function, item.local)
                keys.append((ref, item.descending, item.nulls_last))
            rows = sort_rows(rows, keys)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return rows

    def _semi_join(self, sub: SubQuery) -> set[Any]:
        query = sub.query
        obj = self.resolve_object(query)
        if len(query.items) != 1 or not isinstance(query.items[0], FieldPath):
            raise SoqlError("The selected field in a semi-join must be an Id or a reference",
                            pos=sub.pos)  # fmt: skip
        ref = self.resolve(obj, query.items[0].path, query.items[0].pos)
        if ref.ftype not in ("id", "reference"):
            raise SoqlError(
                f"The selected field '{query.items[0].path}' in the subquery must be an Id or "
                "a reference",
                pos=query.items[0].pos,
            )
        where = self._where(obj, query)
        rows = [r for r in self.source.rows(obj, False) if where(r)]
        rows = self._order_and_slice(obj, query, rows)
        return {ref.get(r) for r in rows if ref.get(r) is not None}

    # ------------------------------------------------------------ output

    def _plan_item(self, obj: str, item: Any) -> tuple[str, Any]:
        if isinstance(item, FieldPath) and item.function:
            raise SoqlError(f"{item.function} can only be selected in an aggregate query",
                            pos=item.pos)  # fmt: skip
        if isinstance(item, FieldPath):
            return "field", self.resolve(obj, item.path, item.pos)
        if isinstance(item, SubQuery):
            return "children", self._plan_children(obj, item)
        raise SoqlError("Aggregate functions need GROUP BY or only aggregates", pos=item.pos)

    def _plan_children(self, obj: str, sub: SubQuery) -> tuple[str, Callable[[Record], Any]]:
        query = sub.query
        found = schema.child_relationship(obj, query.sobject)
        if found is None:
            raise SoqlError(
                f"Didn't understand relationship '{query.sobject}' in FROM part of query call. "
                "If you are attempting to use a custom relationship, be sure to append the "
                "'__r' after the custom relationship name." + _WSDL,
                "INVALID_TYPE",
                query.sobject_pos,
            )
        rel, child, ref_field = found
        items = self._expand(child, query)
        plan = [self._plan_item(child, item) for item in items]
        where = self._where(child, query)
        by_parent: dict[str, list[Record]] = defaultdict(list)
        for row in self.source.rows(child, self._include_deleted):
            if row.get(ref_field) and where(row):
                by_parent[row[ref_field]].append(row)

        def block(parent: Record) -> Any:
            rows = self._order_and_slice(child, query, by_parent.get(parent["Id"], []))
            if not rows:
                return None
            records = [self._to_json(child, r, plan) for r in rows]
            return {"totalSize": len(records), "done": True, "records": records}

        return rel, block

    def _attributes(self, obj: str, record_id: str) -> dict[str, str]:
        return {"type": obj, "url": f"/services/data/v{self.version}/sobjects/{obj}/{record_id}"}

    def _to_json(self, obj: str, row: Record, plan: list[tuple[str, Any]]) -> Record:
        out: Record = {"attributes": self._attributes(obj, row["Id"])}
        for kind, what in plan:
            if kind == "field":
                self._put(out, row, what.hops, what.name)
            else:
                rel, block = what
                out[rel] = block(row)
        return out

    def _put(self, out: Record, row: Record, hops: list[tuple[str, str]], name: str) -> None:
        if not hops:
            out[name] = json_value(row.get(name))
            return
        ref_field, rel = hops[0]
        if rel in out and out[rel] is None:
            return
        parent_id = row.get(ref_field)
        found = self.source.lookup(parent_id) if parent_id else None
        if found is None:
            out[rel] = None
            return
        pobj, parent = found
        nested = out.get(rel) or {"attributes": self._attributes(pobj, parent["Id"])}
        out[rel] = nested
        self._put(nested, parent, hops[1:], name)

    # ------------------------------------------------------------ aggregates

    def _aggregate(
        self, obj: str, query: Query, items: list[Any], rows: list[Record]
    ) -> tuple[list[Record], int]:
        groups_by = [self.resolve(obj, p.path, p.pos, p.function, p.local) for p in query.group_by]
        grouped_keys = {ref.key for ref in groups_by}
        columns: list[tuple[str, Any]] = []
        expr = 0
        for item in items:
            if isinstance(item, FieldPath):
                ref = self.resolve(obj, item.path, item.pos, item.function, item.local)
                if ref.key not in grouped_keys:
                    raise SoqlError(f"Field must be grouped or aggregated: {item.path}",
                                    pos=item.pos)  # fmt: skip
                label = ref.name
                if item.function:
                    label = item.alias or f"expr{expr}"
                    expr += 0 if item.alias else 1
                columns.append((label, ref))
            elif isinstance(item, Aggregate):
                label = item.alias
                if label is None:
                    label = f"expr{expr}"
                    expr += 1
                columns.append((label, self._aggregate_fn(obj, item)))
            else:
                raise SoqlError("unexpected item in an aggregate query", pos=item.pos)
        if query.count_only:
            raise SoqlError("COUNT() cannot be used with GROUP BY", pos=query.sobject_pos)
        groups: dict[tuple[Any, ...], list[Record]] = {}
        if groups_by:
            for row in rows:
                key = tuple(norm(ref.get(row), ref.ftype) for ref in groups_by)
                groups.setdefault(key, []).append(row)
        else:
            groups[()] = rows
        group_rows = list(groups.values())

        def resolve(cmp: Comparison) -> Ref:
            if cmp.aggregate is not None:
                return self._aggregate_ref(obj, cmp.aggregate)
            ref = self.resolve(obj, cmp.field, cmp.pos, cmp.function, cmp.local)
            if ref.key not in grouped_keys:
                raise SoqlError(f"Field must be grouped or aggregated: {cmp.field}", pos=cmp.pos)
            return Ref(ref.name, ref.ftype, lambda g, r=ref: r.get(g[0]) if g else None)

        having = compile_where(query.having, resolve, self.ctx)
        group_rows = [g for g in group_rows if having(g)]
        if query.order_by:
            keys = [(resolve(self._order_cmp(item)), item.descending, item.nulls_last)
                    for item in query.order_by]  # fmt: skip
            group_rows = sort_rows(group_rows, keys)
        if query.offset:
            group_rows = group_rows[query.offset :]
        if query.limit is not None:
            group_rows = group_rows[: query.limit]
        records = []
        for group in group_rows:
            record: Record = {"attributes": {"type": "AggregateResult"}}
            for label, col in columns:
                value = col.get(group[0]) if isinstance(col, Ref) and group else None
                if not isinstance(col, Ref):
                    value = col(group)
                record[label] = json_value(value)
            records.append(record)
        return records, len(records)

    @staticmethod
    def _order_cmp(item: OrderItem) -> Comparison:
        cmp = Comparison(item.field, "=", None, item.pos, item.aggregate)
        cmp.function, cmp.local = item.function, item.local
        return cmp

    def _aggregate_ref(self, obj: str, agg: Aggregate) -> Ref:
        fn = self._aggregate_fn(obj, agg)
        if agg.func in ("COUNT", "COUNT_DISTINCT"):
            ftype = "int"
        elif agg.func in ("SUM", "AVG"):
            ftype = "double"
        else:
            assert agg.arg is not None
            ftype = self.resolve(obj, agg.arg.path, agg.arg.pos).ftype
        return Ref(agg.func, ftype, fn)

    def _aggregate_fn(self, obj: str, agg: Aggregate) -> Callable[[list[Record]], Any]:
        if agg.arg is None:
            return len
        ref = self.resolve(obj, agg.arg.path, agg.arg.pos)
        func = agg.func
        if func in ("SUM", "AVG") and ref.ftype not in NUMERIC:
            raise SoqlError(
                f"field {agg.arg.path} does not support aggregate operator {func}", pos=agg.pos
            )
        if func in ("MIN", "MAX") and ref.ftype in ("boolean", "textarea"):
            raise SoqlError(
                f"field {agg.arg.path} does not support aggregate operator {func}", pos=agg.pos
            )

        def compute(group: list[Record]) -> Any:
            values = [v for v in (ref.get(r) for r in group) if v is not None]
            if func == "COUNT":
                return len(values)
            if func == "COUNT_DISTINCT":
                return len({norm(v, ref.ftype) for v in values})
            if not values:
                return None
            if func == "MIN":
                return min(values, key=lambda v: norm(v, ref.ftype))
            if func == "MAX":
                return max(values, key=lambda v: norm(v, ref.ftype))
            if func == "SUM":
                return sum(values)
            return sum(values) / len(values)

        return compute
