"""/api/v1/services: connected services (the client secret is write-only).

The body models state what a valid service looks like; `shared.services` then applies the
same rules the configuration page uses (and the name check, which needs the database: a
clash is 409, since no body could know the names already taken).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from shared.linking import delete_service
from shared.models import Account, Service
from shared.services import ServiceInvalid, create_service, service_to_dict, update_service
from web.api import api

from ..db import db, runtime
from .contract import Body, Query, QueryBool, Reply, integral, operation
from .errors import ApiError, get_or_404, validation_error

# Text a database column can hold, with something other than spaces in it.
Name = Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
Secret = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
ClientId = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\s\x00]+$")]
_PORT = r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
LoginUrl = Annotated[
    str,
    StringConstraints(
        max_length=255,
        pattern=rf"^(https://[A-Za-z0-9][A-Za-z0-9.-]*{_PORT}"
        rf"|http://(127\.0\.0\.1|localhost|\[::1\]){_PORT})/?$",
    ),
    Field(description="https://login.salesforce.com, https://test.salesforce.com, a My Domain "
          "host, or plain http on a loopback host (the simulator)"),
]  # fmt: skip
ApiVersion = Annotated[str, StringConstraints(pattern=r"^v?[0-9]{2,3}\.0$")]
Scopes = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z_]+ )*(refresh_token|offline_access)( [a-z_]+)*$"),
    Field(description="space-separated; must include refresh_token or offline_access"),
]
Timeout = Annotated[int, Field(ge=15, le=1440), BeforeValidator(integral)]
Percent = Annotated[int, Field(ge=0, le=100), BeforeValidator(integral)]


class ServiceCreate(Body):
    name: Name
    provider: Literal["salesforce"] = "salesforce"
    client_id: ClientId
    client_secret: Annotated[Secret, Field(json_schema_extra={"writeOnly": True})]
    login_url: LoginUrl = "https://login.salesforce.com"
    api_version: ApiVersion = "62.0"
    scopes: Scopes = "api refresh_token offline_access"
    session_timeout_minutes: Timeout = 120
    use_introspection: bool = False
    api_reserve_percent: Percent = 10


class ServiceChange(Body):
    """Only the fields sent change; an empty client_secret keeps the stored one."""

    name: Name | None = None
    provider: Literal["salesforce"] | None = None
    client_id: ClientId | None = None
    client_secret: Annotated[
        Literal[""] | Secret | None, Field(json_schema_extra={"writeOnly": True})
    ] = None
    login_url: LoginUrl | None = None
    api_version: ApiVersion | None = None
    scopes: Scopes | None = None
    session_timeout_minutes: Timeout | None = None
    use_introspection: bool | None = None
    api_reserve_percent: Percent | None = None


class ServiceOut(Reply):
    id: int
    name: str
    provider: str
    client_id: str
    login_url: str
    api_version: str
    scopes: str
    session_timeout_minutes: int
    use_introspection: bool
    api_reserve_percent: int
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class ServiceList(Reply):
    services: list[ServiceOut]


class DeleteQuery(Query):
    confirm: QueryBool = Field(
        False, description="required (true) when accounts are linked: they are revoked too"
    )


class Revoked(Reply):
    name: str
    revoked: bool
    message: str | None


class ServiceDeleted(Reply):
    deleted: bool
    accounts: list[Revoked]


def _refuse_name_clash(name: str | None, service_id: int | None = None) -> None:
    if name is None or not name.strip():
        return
    name = name.strip()
    # SQLite's lower() folds ASCII only: compare the exact name too, or "Ä" passes the check
    # and then fails the unique constraint.
    clash = db().scalar(
        select(Service.id).where(
            or_(Service.name == name, func.lower(Service.name) == name.lower())
        )
    )
    if clash is not None and clash != service_id:
        raise ApiError(409, "conflict", f"name: a service named {name!r} already exists")


def _sent(body: Body) -> dict[str, Any]:
    return body.model_dump(include=body.model_fields_set)


@operation(api, "POST", "/services", "Create a connected service",
           body=ServiceCreate, response=ServiceOut, status=201, errors=(409,))  # fmt: skip
def create_service_api(*, body: ServiceCreate) -> Any:
    _refuse_name_clash(body.name)
    session = db()
    try:
        service = create_service(session, runtime().crypto, body.model_dump())
        session.commit()
    except ServiceInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    except IntegrityError:  # created at the same moment by another request
        session.rollback()
        raise ApiError(409, "conflict", "name: a service with this name exists") from None
    return service_to_dict(service)


@operation(api, "GET", "/services", "List connected services", response=ServiceList)
def list_services() -> Any:
    services = db().scalars(select(Service).order_by(Service.id)).all()
    return {"services": [service_to_dict(s) for s in services]}


@operation(api, "GET", "/services/<int:service_id>", "Get a service", response=ServiceOut)
def get_service(service_id: int) -> Any:
    return service_to_dict(get_or_404(Service, service_id, "service"))


@operation(
    api,
    "PATCH",
    "/services/<int:service_id>",
    "Change a service (a missing or empty client_secret keeps the stored one)",
    body=ServiceChange,
    response=ServiceOut,
    errors=(409,),
)
def update_service_api(service_id: int, *, body: ServiceChange) -> Any:
    session = db()
    service = get_or_404(Service, service_id, "service")
    data = {key: value for key, value in _sent(body).items() if value is not None}
    _refuse_name_clash(data.get("name"), service_id)
    try:
        update_service(session, runtime().crypto, service, data)
        session.commit()
    except ServiceInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "conflict", "name: a service with this name exists") from None
    return service_to_dict(service)


@operation(
    api,
    "DELETE",
    "/services/<int:service_id>",
    "Delete a service; with linked accounts ?confirm=true is required and they are revoked",
    query=DeleteQuery,
    response=ServiceDeleted,
    errors=(409,),
)
def delete_service_api(service_id: int, *, query: DeleteQuery) -> Any:
    session = db()
    get_or_404(Service, service_id, "service")
    names = session.scalars(select(Account.name).where(Account.service_id == service_id)).all()
    if names and not query.confirm:
        raise ApiError(
            409,
            "service_has_accounts",
            f"the service has {len(names)} linked account(s); repeat with ?confirm=true to "
            "revoke them at Salesforce and delete them with the service",
            {"accounts": list(names)},
        )
    session.rollback()  # release the transaction before talking to Salesforce
    outcomes = delete_service(runtime(), service_id) or []
    return {
        "deleted": True,
        "accounts": [
            {"name": o.name, "revoked": o.revoked, "message": o.message} for o in outcomes
        ],
    }
