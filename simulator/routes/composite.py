"""The composite resources: ``/composite/sobjects`` (up to 200 creates, optionally all-or-none)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from simulator import schema
from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, body_object, json_response, sim_state

composite_bp = Blueprint("composite", __name__)
composite_bp.before_request(authenticate_rest)


def _composite_error(exc: SfError) -> dict[str, Any]:
    return {
        "id": None,
        "success": False,
        "errors": [
            {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields or []}
        ],
    }


@composite_bp.post("/services/data/v<version>/composite/sobjects")
def composite_create(version: str) -> Response:
    state = sim_state()
    body = body_object()
    records = body.get("records")
    if not isinstance(records, list):
        raise SfError(400, "JSON_PARSER_ERROR", "records must be a list")
    if len(records) > 200:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone"))
    results: list[dict[str, Any]] = []
    created: list[tuple[str, str]] = []
    with state.lock:
        for item in records:
            try:
                if not isinstance(item, dict):
                    raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
                obj_type = (item.get("attributes") or {}).get("type")
                if not obj_type or schema.canonical_object(obj_type) is None:
                    raise SfError(400, "INVALID_TYPE", "sObject type must be specified")
                obj = schema.canonical_object(obj_type)
                record_id = state.create_record(obj, item)
                created.append((obj, record_id))
                results.append({"id": record_id, "success": True, "errors": []})
            except SfError as exc:
                results.append(_composite_error(exc))
        if all_or_none and any(not r["success"] for r in results):
            for obj, record_id in created:
                state.records[obj].pop(record_id, None)
            rolled = SfError(
                400,
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was "
                "using AllOrNone header",
            )
            results = [_composite_error(rolled) if r["success"] else r for r in results]
    return json_response(results)
