"""The composite resources, each one API call however many records or subrequests it carries.

- ``/composite/sobjects``: POST (create), PATCH (update), DELETE (``?ids=``) up to 200 records,
  GET ``/composite/sobjects/<obj>?ids=&fields=``; ``allOrNone`` rolls every change back.
- ``/composite``: up to 25 subrequests run in order; ``@{referenceId.path}`` in a URL or body is
  replaced by a value of an earlier response (``@{NewAccount.id}``,
  ``@{Q.records[0].Id}``); with ``allOrNone`` the first failure rolls everything back and the
  other subrequests answer ``PROCESSING_HALTED``.
- ``/composite/batch``: up to 25 independent subrequests (``haltOnError``).
- ``/composite/tree/<obj>``: nested parent/child record trees, always all-or-none.

Subrequests are dispatched to the same REST views without the per-request hooks, so they are
neither counted as API calls nor logged separately, and injected faults apply to the outer call.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from simulator import schema
from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, body_object, json_response, sim_state
from simulator.state import API_VERSIONS

composite_bp = Blueprint("composite", __name__)
composite_bp.before_request(authenticate_rest)

MAX_RECORDS = 200
MAX_SUBREQUESTS = 25
ROLLED_BACK = SfError(
    400,
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
)
HALTED = SfError(
    400,
    "PROCESSING_HALTED",
    "The transaction was rolled back since another operation in the same transaction failed.",
)


def _composite_error(exc: SfError, record_id: str | None = None) -> dict[str, Any]:
    return {
        "id": record_id,
        "success": False,
        "errors": [
            {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields or []}
        ],
    }


def _records(body: dict[str, Any]) -> list[Any]:
    records = body.get("records")
    if not isinstance(records, list):
        raise SfError(400, "JSON_PARSER_ERROR", "records must be a list")
    if len(records) > MAX_RECORDS:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    return records


def _object_of(item: Any) -> str:
    if not isinstance(item, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
    obj_type = (item.get("attributes") or {}).get("type")
    obj = schema.canonical_object(obj_type) if isinstance(obj_type, str) else None
    if obj is None:
        raise SfError(400, "INVALID_TYPE", "sObject type must be specified")
    return sim_state().check_writable_object(obj)


def _collection(all_or_none: bool, items: list[Any], apply: Any) -> Response:
    """Run ``apply(item) -> id`` per item; roll everything back on a failure with allOrNone."""
    state = sim_state()
    results: list[dict[str, Any]] = []
    with state.lock:
        snap = state.snapshot() if all_or_none else None
        for item in items:
            try:
                results.append({"id": apply(item), "success": True, "errors": []})
            except SfError as exc:
                item_id = item.get("id") if isinstance(item, dict) else item
                results.append(_composite_error(exc, item_id if isinstance(item_id, str) else None))
        if snap is not None and any(not r["success"] for r in results):
            state.restore(snap)
            results = [
                _composite_error(ROLLED_BACK, r["id"]) if r["success"] else r for r in results
            ]
    return json_response(results)


@composite_bp.post("/services/data/v<version>/composite/sobjects")
def composite_create(version: str) -> Response:
    body = body_object()
    state = sim_state()

    def create(item: Any) -> str:
        obj = _object_of(item)
        if item.get("id"):
            raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        return state.create_record(obj, item)

    return _collection(bool(body.get("allOrNone")), _records(body), create)


@composite_bp.patch("/services/data/v<version>/composite/sobjects")
def composite_update(version: str) -> Response:
    body = body_object()
    state = sim_state()

    def update(item: Any) -> str:
        obj = _object_of(item)
        record_id = item.get("id")
        if not isinstance(record_id, str) or not record_id:
            raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        fields = {k: v for k, v in item.items() if k.lower() != "id"}
        state.update_record(obj, record_id, fields)
        return state.find_any(record_id)[1]["Id"]

    return _collection(bool(body.get("allOrNone")), _records(body), update)


@composite_bp.delete("/services/data/v<version>/composite/sobjects")
def composite_delete(version: str) -> Response:
    ids = [i for i in request.args.get("ids", "").split(",") if i]
    if not ids:
        raise SfError(400, "MISSING_ARGUMENT", "ids not specified")
    if len(ids) > MAX_RECORDS:
        raise SfError(400, "EXCEEDED_ID_LIMIT", f"more than {MAX_RECORDS} ids")
    state = sim_state()

    def delete(record_id: str) -> str:
        obj, record = state.find_any(record_id)
        state.check_writable_object(obj)
        state.delete_record(obj, record_id)
        return str(record["Id"])

    all_or_none = request.args.get("allOrNone", "false").lower() == "true"
    return _collection(all_or_none, ids, delete)


@composite_bp.get("/services/data/v<version>/composite/sobjects/<obj>")
def composite_retrieve(version: str, obj: str) -> Response:
    ids = [i for i in request.args.get("ids", "").split(",") if i]
    fields = [f for f in request.args.get("fields", "").split(",") if f]
    if not ids or not fields:
        raise SfError(400, "MISSING_ARGUMENT", "ids and fields must be specified")
    state = sim_state()
    out: list[Any] = []
    for record_id in ids:
        try:
            record = state.get_record(obj, record_id, fields)
        except SfError as exc:
            if exc.status != 404:
                raise
            out.append(None)
            continue
        record["attributes"]["url"] = record["attributes"]["url"].replace("v62.0", f"v{version}")
        out.append(record)
    return json_response(out)


# ---------------------------------------------------------------- subrequest dispatch


def dispatch(method: str, url: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    """Run one subrequest through the REST views: (status, parsed body, headers)."""
    path, _, query = url.partition("?")
    adapter = current_app.url_map.bind("simulator")
    try:
        endpoint, args = adapter.match(path, method=method.upper())
    except NotFound:
        return 404, SfError(404, "NOT_FOUND", "The requested resource does not exist").body(), {}
    except MethodNotAllowed:
        return 405, SfError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")\
            .body(), {}  # fmt: skip
    if endpoint.startswith("composite.") or args.get("version") not in API_VERSIONS:
        error = SfError(400, "INVALID_API_INPUT", f"Unsupported subrequest URL: {url}")
        return 400, error.body(), {}
    data = None if body is None else json.dumps(body)
    headers = {"Authorization": request.headers.get("Authorization", "")}
    with current_app.test_request_context(
        path,
        method=method.upper(),
        query_string=query,
        data=data,
        content_type="application/json",
        headers=headers,
    ):
        try:
            resp = current_app.view_functions[endpoint](**args)
        except SfError as exc:
            return exc.status, exc.body(), {}
    text = resp.get_data(as_text=True)
    out_headers = {"Location": resp.headers["Location"]} if "Location" in resp.headers else {}
    return resp.status_code, (json.loads(text) if text else None), out_headers


_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_STEP = re.compile(r"([A-Za-z0-9_]+)|\[(\d+)\]")


class _Unresolved(Exception):
    pass


def _lookup(bodies: dict[str, Any], ref: str, path: str) -> Any:
    if ref not in bodies:
        raise _Unresolved(f"{ref}.{path}")
    value = bodies[ref]
    for part in path.split("."):
        for name, index in _STEP.findall(part):
            try:
                value = value[int(index)] if index else value[name]
            except (KeyError, IndexError, TypeError):
                raise _Unresolved(f"{ref}.{path}") from None
    return value


def _substitute(value: Any, bodies: dict[str, Any], in_url: bool = False) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole and not in_url:
            return _lookup(bodies, whole.group(1), whole.group(2))
        return _REFERENCE.sub(lambda m: str(_lookup(bodies, m.group(1), m.group(2))), value)
    if isinstance(value, dict):
        return {k: _substitute(v, bodies) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, bodies) for v in value]
    return value


@composite_bp.post("/services/data/v<version>/composite")
def composite(version: str) -> Response:
    body = body_object()
    subrequests = body.get("compositeRequest")
    if not isinstance(subrequests, list) or not subrequests:
        raise SfError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list")
    if len(subrequests) > MAX_SUBREQUESTS:
        raise SfError(
            400,
            "INVALID_API_INPUT",
            f"Composite API only allows up to {MAX_SUBREQUESTS} subrequests",
        )
    all_or_none = bool(body.get("allOrNone"))
    state = sim_state()
    responses: list[dict[str, Any]] = []
    bodies: dict[str, Any] = {}
    with state.lock:
        snap = state.snapshot() if all_or_none else None
        failed = False
        for sub in subrequests:
            ref = sub.get("referenceId") if isinstance(sub, dict) else None
            if not isinstance(sub, dict) or not isinstance(ref, str) or not sub.get("url"):
                raise SfError(
                    400, "JSON_PARSER_ERROR", "each subrequest needs method, url and referenceId"
                )
            if ref in bodies or any(r["referenceId"] == ref for r in responses):
                raise SfError(400, "DUPLICATE_VALUE", f"Duplicate referenceId {ref}")
            if failed and all_or_none:
                status, out, headers = HALTED.status, HALTED.body(), {}
            else:
                try:
                    url = _substitute(sub["url"], bodies, in_url=True)
                    payload = _substitute(sub.get("body"), bodies)
                    status, out, headers = dispatch(sub.get("method", "GET"), url, payload)
                except _Unresolved as exc:
                    status, headers = 400, {}
                    source = str(exc).split(".")[0]
                    message = f"Invalid reference specified. No value for {exc} found in {source}."
                    out = [{"errorCode": "PROCESSING_HALTED", "message": message}]
            if status >= 400:
                failed = True
            else:
                bodies[ref] = out
            responses.append(
                {"body": out, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref}
            )
        if snap is not None and failed:
            state.restore(snap)
            for item in responses:
                if item["httpStatusCode"] < 400:
                    item.update(body=HALTED.body(), httpHeaders={}, httpStatusCode=400)
    return json_response({"compositeResponse": responses})


@composite_bp.post("/services/data/v<version>/composite/batch")
def batch(version: str) -> Response:
    body = body_object()
    subrequests = body.get("batchRequests")
    if not isinstance(subrequests, list) or not subrequests:
        raise SfError(400, "JSON_PARSER_ERROR", "batchRequests must be a non-empty list")
    if len(subrequests) > MAX_SUBREQUESTS:
        raise SfError(400, "INVALID_API_INPUT", f"A batch may hold {MAX_SUBREQUESTS} requests")
    halt = bool(body.get("haltOnError"))
    results: list[dict[str, Any]] = []
    halted = False
    for sub in subrequests:
        if halted:
            results.append({"statusCode": 412, "result": [{
                "errorCode": "BATCH_PROCESSING_HALTED",
                "message": "Batch processing halted per request"}]})  # fmt: skip
            continue
        if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
            raise SfError(400, "JSON_PARSER_ERROR", "each batch request needs method and url")
        url = sub["url"]
        url = url if url.startswith("/services/data/") else "/services/data/" + url.lstrip("/")
        status, out, _ = dispatch(sub.get("method", "GET"), url, sub.get("richInput"))
        results.append({"statusCode": status, "result": out})
        halted = halt and status >= 400
    has_errors = any(r["statusCode"] >= 400 for r in results)
    return json_response({"hasErrors": has_errors, "results": results})


@composite_bp.post("/services/data/v<version>/composite/tree/<obj>")
def tree(version: str, obj: str) -> Response:
    state = sim_state()
    obj = state.check_writable_object(obj)
    records = _records(body_object())
    results: list[dict[str, Any]] = []
    refs: set[str] = set()
    count = 0

    def insert(item: Any, expected: str, parent: tuple[str, str] | None) -> None:
        nonlocal count
        count += 1
        if count > MAX_RECORDS:
            raise SfError(400, "EXCEEDED_ID_LIMIT", f"more than {MAX_RECORDS} records in a tree")
        if not isinstance(item, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
        attributes = item.get("attributes") or {}
        ref = attributes.get("referenceId")
        if not isinstance(ref, str) or not ref or ref in refs:
            raise _TreeError(str(ref), SfError(400, "INVALID_INPUT",
                             "Include a unique referenceId for each record"))  # fmt: skip
        refs.add(ref)
        if schema.canonical_object(str(attributes.get("type", ""))) != expected:
            raise _TreeError(ref, SfError(400, "INVALID_TYPE", f"type must be {expected}"))
        fields: dict[str, Any] = {}
        children: list[tuple[str, str, list[Any]]] = []
        for key, value in item.items():
            if key == "attributes":
                continue
            child = schema.child_relationship(expected, key)
            if child is not None and isinstance(value, dict):
                _rel, child_obj, ref_field = child
                children.append((child_obj, ref_field, value.get("records") or []))
            else:
                fields[key] = value
        if parent is not None:
            fields[parent[0]] = parent[1]
        try:
            record_id = state.create_record(expected, fields)
        except SfError as exc:
            raise _TreeError(ref, exc) from None
        results.append({"referenceId": ref, "id": record_id})
        for child_obj, ref_field, items in children:
            for child_item in items:
                insert(child_item, child_obj, (ref_field, record_id))

    with state.lock:
        snap = state.snapshot()
        try:
            for item in records:
                insert(item, obj, None)
        except _TreeError as err:
            state.restore(snap)
            error = {"statusCode": err.error.error_code, "message": err.error.message,
                     "fields": err.error.fields or []}  # fmt: skip
            return json_response(
                {"hasErrors": True, "results": [{"referenceId": err.ref, "errors": [error]}]}, 400
            )
    return json_response({"hasErrors": False, "results": results}, 201)


class _TreeError(Exception):
    def __init__(self, ref: str, error: SfError) -> None:
        super().__init__(error.message)
        self.ref = ref
        self.error = error
