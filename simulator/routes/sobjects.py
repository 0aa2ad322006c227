"""The REST API's object surface: versions, resources, describe, record CRUD, upsert by
external id and the /updated and /deleted replication windows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from simulator import schema, soql
from simulator.errors import SfError
from simulator.routes.plumbing import (
    authenticate_rest,
    body_object,
    json_response,
    sim_state,
)
from simulator.state import API_VERSIONS, LATEST_API_VERSION

VERSION_LABELS = {"62.0": "Winter '25", "61.0": "Summer '24", "60.0": "Spring '24"}

sobjects_bp = Blueprint("sobjects", __name__)
sobjects_bp.before_request(authenticate_rest)


def _versions() -> list[dict[str, str]]:
    return [
        {
            "label": VERSION_LABELS.get(v, f"API {v}"),
            "url": f"/services/data/v{v}",
            "version": v,
        }
        for v in API_VERSIONS
    ]


@sobjects_bp.get("/services/data")
@sobjects_bp.get("/services/data/")
def versions() -> Response:
    return json_response(_versions())


@sobjects_bp.get("/services/data/v<version>/")
@sobjects_bp.get("/services/data/v<version>")
def resources(version: str) -> Response:
    base = f"/services/data/v{version}"
    return json_response(
        {
            name: f"{base}/{name}"
            for name in ("sobjects", "query", "queryAll", "limits", "composite")
        }
    )


def _object_info(obj: str, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    return {
        "name": obj,
        "label": schema.OBJECTS[obj]["label"],
        "labelPlural": schema.OBJECTS[obj]["label"] + "s",
        "keyPrefix": schema.key_prefix(obj),
        "createable": True,
        "updateable": True,
        "deletable": True,
        "queryable": True,
        "custom": False,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


@sobjects_bp.get("/services/data/v<version>/sobjects")
@sobjects_bp.get("/services/data/v<version>/sobjects/")
def sobjects(version: str) -> Response:
    return json_response(
        {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [_object_info(o, version) for o in schema.object_names()],
        }
    )


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/describe")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/describe/")
def describe(version: str, obj: str) -> Response:
    state = sim_state()
    obj = state.resolve_object(obj)
    required = set(schema.OBJECTS[obj]["required"])
    fields = []
    with state.lock:
        all_fields = dict(schema.all_fields(obj))
        for custom in sorted(state.custom_fields[obj]):
            all_fields[custom] = "string"
    for name, ftype in all_fields.items():
        writable = schema.writable(obj, name) or name.endswith("__c")
        fields.append(
            {
                "name": name,
                "label": name,
                "type": ftype,
                "nillable": name not in required and ftype != "boolean" and name != "Id",
                "createable": writable,
                "updateable": writable,
                "externalId": name.endswith("__c"),
                "idLookup": name == "Id" or name.endswith("__c"),
                "custom": name.endswith("__c"),
                "referenceTo": (
                    [schema.REFERENCE_TARGETS[name]] if name in schema.REFERENCE_TARGETS else []
                ),
            }
        )
    return json_response({**_object_info(obj, version), "fields": fields})


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/")
def sobject_info(version: str, obj: str) -> Response:
    obj = sim_state().resolve_object(obj)
    return json_response({"objectDescribe": _object_info(obj, version), "recentItems": []})


@sobjects_bp.post("/services/data/v<version>/sobjects/<obj>")
@sobjects_bp.post("/services/data/v<version>/sobjects/<obj>/")
def create(version: str, obj: str) -> Response:
    state = sim_state()
    state.resolve_object(obj)
    record_id = state.create_record(obj, body_object())
    return json_response({"id": record_id, "success": True, "errors": []}, 201)


def _range_args() -> tuple[Any, Any]:
    out = []
    for key in ("start", "end"):
        value = request.args.get(key)
        if not value:
            raise SfError(400, "MISSING_ARGUMENT", f"{key} was not specified")
        try:
            out.append(soql.parse_datetime(value))
        except ValueError:
            raise SfError(
                400, "INVALID_PARAMETER_VALUE", f"Unable to parse {key} date: {value}"
            ) from None
    if out[0] > out[1]:
        raise SfError(400, "INVALID_REPLICATION_DATE", "start date must be before end date")
    return out[0], out[1]


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/updated")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/updated/")
def updated(version: str, obj: str) -> Response:
    start, end = _range_args()
    return json_response(sim_state().updated_ids(obj, start, end))


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/deleted")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/deleted/")
def deleted(version: str, obj: str) -> Response:
    start, end = _range_args()
    return json_response(sim_state().deleted_ids(obj, start, end))


@sobjects_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["GET"])
def get_record(version: str, obj: str, record_id: str) -> Response:
    fields = request.args.get("fields")
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    record = sim_state().get_record(obj, record_id, names)
    record["attributes"]["url"] = record["attributes"]["url"].replace(
        f"v{LATEST_API_VERSION}", f"v{version}"
    )
    return json_response(record)


@sobjects_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["PATCH"])
def update_record(version: str, obj: str, record_id: str) -> Response:
    state = sim_state()
    state.resolve_object(obj)
    state.update_record(obj, record_id, body_object())
    return Response(status=204)


@sobjects_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["DELETE"])
def delete_record(version: str, obj: str, record_id: str) -> Response:
    sim_state().delete_record(obj, record_id)
    return Response(status=204)


@sobjects_bp.route(
    "/services/data/v<version>/sobjects/<obj>/<field>/<path:value>", methods=["PATCH"]
)
def upsert(version: str, obj: str, field: str, value: str) -> Response:
    state = sim_state()
    state.resolve_object(obj)
    body = body_object()
    record_id, created = state.upsert_record(obj, field, value, body)
    return json_response(
        {"id": record_id, "success": True, "errors": [], "created": created},
        201 if created else 200,
    )
