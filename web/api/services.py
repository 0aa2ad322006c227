"""/api/v1/services: connected services (the client secret is write-only)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from shared.linking import delete_service
from shared.models import Account, Service
from shared.services import ServiceInvalid, create_service, service_to_dict, update_service
from web.api import api

from ..db import db, runtime
from .errors import ApiError, get_or_404, json_body, validation_error
from .openapi import document, schema

_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 100},
    "provider": {"type": "string", "enum": ["salesforce"]},
    "client_id": {"type": "string"},
    "login_url": {"type": "string", "format": "uri", "default": "https://login.salesforce.com"},
    "api_version": {"type": "string", "pattern": r"^[0-9]{2,3}\.0$", "default": "62.0"},
    "scopes": {"type": "string", "default": "api refresh_token offline_access"},
    "session_timeout_minutes": {"type": "integer", "minimum": 15, "maximum": 1440, "default": 120},
    "use_introspection": {"type": "boolean", "default": False},
    "api_reserve_percent": {"type": "integer", "minimum": 0, "maximum": 100, "default": 10},
}
SERVICE = schema(
    "Service",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            **_FIELDS,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
)
SERVICE_INPUT = schema(
    "ServiceInput",
    {
        "type": "object",
        "properties": {**_FIELDS, "client_secret": {"type": "string", "writeOnly": True}},
        "required": ["name", "client_id", "client_secret"],
    },
)
ID_PARAM = [{"name": "service_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


@api.post("/services")
def create_service_api() -> Any:
    data = json_body()
    session = db()
    try:
        service = create_service(session, runtime().crypto, data)
    except ServiceInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return jsonify(service_to_dict(service)), 201


@api.get("/services")
def list_services() -> Any:
    services = db().scalars(select(Service).order_by(Service.id)).all()
    return jsonify({"services": [service_to_dict(s) for s in services]})


@api.get("/services/<int:service_id>")
def get_service(service_id: int) -> Any:
    return jsonify(service_to_dict(get_or_404(Service, service_id, "service")))


@api.patch("/services/<int:service_id>")
def update_service_api(service_id: int) -> Any:
    data = json_body()
    session = db()
    service = get_or_404(Service, service_id, "service")
    try:
        update_service(session, runtime().crypto, service, data)
    except ServiceInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return jsonify(service_to_dict(service))


@api.delete("/services/<int:service_id>")
def delete_service_api(service_id: int) -> Any:
    session = db()
    get_or_404(Service, service_id, "service")
    names = session.scalars(select(Account.name).where(Account.service_id == service_id)).all()
    if names and request.args.get("confirm") not in ("true", "1", "yes"):
        raise ApiError(
            409,
            "service_has_accounts",
            f"the service has {len(names)} linked account(s); repeat with ?confirm=true to "
            "revoke them at Salesforce and delete them with the service",
            {"accounts": list(names)},
        )
    session.rollback()  # release the transaction before talking to Salesforce
    outcomes = delete_service(runtime(), service_id) or []
    return jsonify(
        {
            "deleted": True,
            "accounts": [
                {"name": o.name, "revoked": o.revoked, "message": o.message} for o in outcomes
            ],
        }
    )


document("/services", "POST", "Create a connected service", request=SERVICE_INPUT,
         response=SERVICE, status=201)  # fmt: skip
document(
    "/services",
    "GET",
    "List connected services",
    response={"type": "object", "properties": {"services": {"type": "array", "items": SERVICE}}},
)
document("/services/{service_id}", "GET", "Get a service", response=SERVICE, params=ID_PARAM)
document(
    "/services/{service_id}",
    "PATCH",
    "Change a service (a missing or empty client_secret keeps the stored one)",
    request={"type": "object", "properties": {**_FIELDS, "client_secret": {"type": "string"}}},
    response=SERVICE,
    params=ID_PARAM,
)
document(
    "/services/{service_id}",
    "DELETE",
    "Delete a service; with linked accounts ?confirm=true is required and they are revoked",
    response={
        "type": "object",
        "properties": {"deleted": {"type": "boolean"}, "accounts": {"type": "array"}},
    },
    params=[*ID_PARAM, {"name": "confirm", "in": "query", "schema": {"type": "boolean"}}],
)
