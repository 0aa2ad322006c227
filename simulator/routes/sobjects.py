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
            for name in ("sobjects", "query", "queryAll", "limits", "composite", "search")
        }
    )


def _object_info(obj: str, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    writable = not schema.OBJECTS[obj].get("read_only")
    return {
        "name": obj,
        "label": schema.OBJECTS[obj]["label"],
        "labelPlural": schema.OBJECTS[obj]["plural"],
        "keyPrefix": schema.key_prefix(obj),
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "queryable": True,
        "searchable": True,
        "retrieveable": True,
        "replicateable": True,
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


_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
    "date": "xsd:date", "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "int": "xsd:int", "anyType": "xsd:anyType",
}  # fmt: skip


def _field_describe(obj: str, name: str, ftype: str, custom: dict[str, Any] | None) -> Any:
    required = set(schema.OBJECTS[obj]["required"]) | ({name} if custom and custom["required"]
                                                        else set())  # fmt: skip
    writable = (schema.writable(obj, name) or name.endswith("__c")) and not schema.OBJECTS[obj].get(
        "read_only"
    )
    defaults = schema.OBJECTS[obj].get("defaults", {})
    if custom is not None:
        picklist = custom["picklist_values"]
        length = custom["length"] or 0
    else:
        picklist = schema.PICKLISTS.get((obj, name), [])
        length = schema.field_length(name, ftype)
    numeric = ftype in ("double", "currency", "percent", "int")
    reference_to = schema.reference_targets(name) if ftype == "reference" else []
    return {
        "name": name,
        "label": custom["label"] if custom else schema.field_label(name),
        "type": ftype,
        "soapType": _SOAP_TYPES.get(ftype, "xsd:string"),
        "length": length,
        "byteLength": length * 3,
        "precision": 18 if numeric and ftype != "int" else 0,
        "scale": 2 if ftype in ("currency", "double", "percent") else 0,
        "digits": 9 if ftype == "int" else 0,
        "nillable": name not in required and ftype != "boolean" and name != "Id",
        "createable": writable,
        "updateable": writable,
        "defaultedOnCreate": name in defaults
        or ftype == "boolean"
        or name in schema.READ_ONLY
        or name == "OwnerId",
        "calculated": name in schema.OBJECTS[obj].get("computed", set()),
        "unique": bool(custom and custom["unique"]),
        "externalId": bool(custom and custom["external_id"]),
        "idLookup": name == "Id" or bool(custom and custom["external_id"]),
        "custom": name.endswith("__c"),
        "filterable": ftype != "textarea",
        "sortable": ftype != "textarea",
        "groupable": ftype not in ("textarea", "double", "currency", "percent", "datetime"),
        "referenceTo": reference_to,
        "relationshipName": schema.relationship_name(name) if reference_to else None,
        "polymorphicForeignKey": len(reference_to) > 1,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": defaults.get(name) == value,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in picklist
        ],  # fmt: skip
        "restrictedPicklist": False,
        "defaultValue": defaults.get(name) if ftype != "boolean" else bool(defaults.get(name)),
    }


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/describe")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/describe/")
def describe(version: str, obj: str) -> Response:
    state = sim_state()
    obj = state.resolve_object(obj)
    fields = []
    with state.lock:
        all_fields = dict(schema.all_fields(obj))
        defs = dict(state.custom_field_defs[obj])
        for custom in sorted(state.custom_fields[obj]):
            all_fields[custom] = defs[custom]["type"] if custom in defs else "string"
    for name, ftype in all_fields.items():
        fields.append(_field_describe(obj, name, ftype, defs.get(name)))
    children = [
        {"childSObject": child, "field": field, "relationshipName": rel, "cascadeDelete": False}
        for rel, (child, field) in schema.CHILD_RELATIONSHIPS.get(obj, {}).items()
    ]
    return json_response(
        {**_object_info(obj, version), "fields": fields, "childRelationships": children}
    )


@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>")
@sobjects_bp.get("/services/data/v<version>/sobjects/<obj>/")
def sobject_info(version: str, obj: str) -> Response:
    obj = sim_state().resolve_object(obj)
    return json_response({"objectDescribe": _object_info(obj, version), "recentItems": []})


@sobjects_bp.post("/services/data/v<version>/sobjects/<obj>")
@sobjects_bp.post("/services/data/v<version>/sobjects/<obj>/")
def create(version: str, obj: str) -> Response:
    state = sim_state()
    obj = state.check_writable_object(obj)
    record_id = state.create_record(obj, body_object())
    location = f"/services/data/v{version}/sobjects/{obj}/{record_id}"
    return json_response(
        {"id": record_id, "success": True, "errors": []}, 201, {"Location": location}
    )


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
    obj = state.check_writable_object(obj)
    state.update_record(obj, record_id, body_object())
    return Response(status=204)


@sobjects_bp.route("/services/data/v<version>/sobjects/<obj>/<record_id>", methods=["DELETE"])
def delete_record(version: str, obj: str, record_id: str) -> Response:
    state = sim_state()
    state.delete_record(state.check_writable_object(obj), record_id)
    return Response(status=204)


@sobjects_bp.route(
    "/services/data/v<version>/sobjects/<obj>/<field>/<path:value>", methods=["PATCH"]
)
def upsert(version: str, obj: str, field: str, value: str) -> Response:
    state = sim_state()
    obj = state.check_writable_object(obj)
    body = body_object()
    record_id, created = state.upsert_record(obj, field, value, body)
    return json_response(
        {"id": record_id, "success": True, "errors": [], "created": created},
        201 if created else 200,
    )


def _one_by_external_id(version: str, obj: str, field: str, value: str) -> dict[str, Any]:
    """The single record with this external id; 404, or 300 with the candidates' URLs."""
    state = sim_state()
    matches = state.find_by_external_id(obj, field, value)
    obj = state.resolve_object(obj)
    if not matches:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    if len(matches) > 1:
        urls = [f"/services/data/v{version}/sobjects/{obj}/{r['Id']}" for r in matches]
        raise MultipleChoices(urls)
    return matches[0]


class MultipleChoices(SfError):
    """300 with a JSON array of the matching records' URLs, as Salesforce answers."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(300, "MULTIPLE_CHOICES", "More than one record matches")
        self.urls = urls

    def body(self) -> list[Any]:
        return list(self.urls)


@sobjects_bp.route("/services/data/v<version>/sobjects/<obj>/<field>/<path:value>", methods=["GET"])
def get_by_external_id(version: str, obj: str, field: str, value: str) -> Response:
    record = _one_by_external_id(version, obj, field, value)
    return get_record(version, obj, record["Id"])


@sobjects_bp.route(
    "/services/data/v<version>/sobjects/<obj>/<field>/<path:value>", methods=["DELETE"]
)
def delete_by_external_id(version: str, obj: str, field: str, value: str) -> Response:
    state = sim_state()
    record = _one_by_external_id(version, obj, field, value)
    state.delete_record(state.check_writable_object(obj), record["Id"])
    return Response(status=204)
