"""/api/v1/accounts: link, list, show, unlink (revoking at Salesforce) and refresh accounts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints
from sqlalchemy import select

from shared import usage
from shared.accounts import account_to_dict
from shared.linking import LinkInvalid, start_link, unlink_account
from shared.models import Account, Service, utcnow
from web.api import api

from ..db import db, runtime, settings
from .contract import MAX_ID, Body, Query, Reply, integral, operation
from .errors import ApiError, get_or_404, not_found, validation_error

Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


class LinkStart(Body):
    service_id: Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(integral)]
    name: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"),
        Field(description="the account's name, e.g. acme-prod"),
    ]


class LinkStarted(Reply):
    authorize_url: str = Field(json_schema_extra={"format": "uri"})
    state_expires_at: str = Field(json_schema_extra={"format": "date-time"})


class ApiUsage(Reply):
    used: int | None
    max: int | None
    at: Time


class AccountOut(Reply):
    id: int
    name: str
    service_id: int
    status: Literal["active", "needs_reauth"]
    status_reason: str | None
    instance_url: str | None
    username: str | None
    organization_id: str | None
    token_issued_at: Time
    token_expires_at: Time
    last_refresh_at: Time
    refresh_count: int
    api_usage: ApiUsage


class AccountList(Reply):
    accounts: list[AccountOut]


class AccountDeleted(Reply):
    deleted: bool
    revoked: bool
    message: str | None


class UsageWindow(Query):
    hours: int = Field(24, ge=1, le=48, description="how far back, in hours (samples are kept 48)")


class UsageSample(Reply):
    at: str = Field(json_schema_extra={"format": "date-time"})
    used: int
    max: int


class UsageHistory(Reply):
    account_id: int
    every_seconds: int = Field(description="the sampling interval")
    since: str = Field(json_schema_extra={"format": "date-time"})
    samples: list[UsageSample]


def _get(account_id: int) -> Account:
    return get_or_404(Account, account_id, "account")


def _release(account_id: int) -> None:
    """404 for an unknown account, then end the request's transaction: the caller talks to
    Salesforce and must not hold the database (on SQLite, the write lock) meanwhile."""
    _get(account_id)
    db().rollback()


@operation(
    api,
    "POST",
    "/accounts/link",
    "Start linking an account: open authorize_url in a browser and consent",
    description="404 when service_id names no service; 409 when the name belongs to an "
    "account of another service.",
    body=LinkStart,
    response=LinkStarted,
    errors=(404, 409),
)
def link_account(*, body: LinkStart) -> Any:
    session = db()
    get_or_404(Service, body.service_id, "service")
    other = session.scalar(select(Account.service_id).where(Account.name == body.name))
    if other is not None and other != body.service_id:
        raise ApiError(409, "conflict", f"name: the account {body.name!r} belongs to another "
                       "service")  # fmt: skip
    try:
        started = start_link(
            session, runtime().crypto, settings().oauth_callback_url, body.service_id, body.name
        )
    except LinkInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return {
        "authorize_url": started.authorize_url,
        "state_expires_at": started.state_expires_at.isoformat(),
    }


@operation(api, "GET", "/accounts", "List connected accounts", response=AccountList)
def list_accounts() -> Any:
    accounts = db().scalars(select(Account).order_by(Account.id)).all()
    return {"accounts": [account_to_dict(a) for a in accounts]}


@operation(api, "GET", "/accounts/<int:account_id>", "Get an account", response=AccountOut)
def get_account(account_id: int) -> Any:
    return account_to_dict(_get(account_id))


@operation(
    api,
    "DELETE",
    "/accounts/<int:account_id>",
    "Unlink an account: revoke its refresh token at Salesforce, then delete it",
    response=AccountDeleted,
)
def delete_account(account_id: int) -> Any:
    _release(account_id)
    outcome = unlink_account(runtime(), account_id)
    if outcome is None:
        raise not_found("account")
    return {"deleted": True, "revoked": outcome.revoked, "message": outcome.message}


@operation(
    api,
    "POST",
    "/accounts/<int:account_id>/refresh",
    "Refresh the account's access token now",
    description="409 when the account must be linked again; 502 when Salesforce fails.",
    response=AccountOut,
    errors=(409, 502),
)
def refresh_account_api(account_id: int) -> Any:
    _release(account_id)
    from shared.salesforce.auth import refresh_account
    from shared.salesforce.errors import NeedsReauth, SalesforceError, TokenError

    try:
        refresh_account(runtime(), account_id, force=True)
    except (NeedsReauth, TokenError) as exc:
        raise ApiError(409, exc.error_code or "refresh_failed", exc.message) from None
    except SalesforceError as exc:
        raise ApiError(502, exc.error_code or "refresh_failed", exc.message) from None
    return account_to_dict(_get(account_id))  # the rollback expired the old values


@operation(
    api,
    "GET",
    "/accounts/<int:account_id>/usage",
    "API usage samples of the account, oldest first",
    description="Daily requests used and the allocation as Salesforce last reported them, "
    "sampled by beat every 5 minutes and kept 48 hours; empty until beat has sampled.",
    query=UsageWindow,
    response=UsageHistory,
)
def account_usage(account_id: int, *, query: UsageWindow) -> Any:
    _get(account_id)
    since = utcnow() - timedelta(hours=query.hours)
    samples = usage.samples_since(db(), account_id, since)
    return {
        "account_id": account_id,
        "every_seconds": int(usage.SAMPLE_EVERY.total_seconds()),
        "since": since.isoformat(),
        "samples": [{"at": s.at.isoformat(), "used": s.used, "max": s.max} for s in samples],
    }
