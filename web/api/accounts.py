"""/api/v1/accounts: link, list, show, unlink (revoking at Salesforce) and refresh accounts."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select

from shared.accounts import account_to_dict
from shared.linking import LinkInvalid, start_link, unlink_account
from shared.models import Account
from web.api import api

from ..db import db, runtime, settings
from .errors import ApiError, get_or_404, json_body, not_found, validation_error
from .openapi import document, schema

_TIME = {"type": ["string", "null"], "format": "date-time"}
ACCOUNT = schema(
    "Account",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "service_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["active", "needs_reauth"]},
            "status_reason": {"type": ["string", "null"]},
            "instance_url": {"type": ["string", "null"]},
            "username": {"type": ["string", "null"]},
            "organization_id": {"type": ["string", "null"]},
            "token_issued_at": _TIME,
            "token_expires_at": _TIME,
            "last_refresh_at": _TIME,
            "refresh_count": {"type": "integer"},
            "api_usage": {
                "type": "object",
                "properties": {
                    "used": {"type": ["integer", "null"]},
                    "max": {"type": ["integer", "null"]},
                    "at": _TIME,
                },
            },
        },
    },
)
ID_PARAM = [{"name": "account_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _get(account_id: int) -> Account:
    return get_or_404(Account, account_id, "account")


def _release(account_id: int) -> None:
    """404 for an unknown account, then end the request's transaction: the caller talks to
    Salesforce and must not hold the database (on SQLite, the write lock) meanwhile."""
    _get(account_id)
    db().rollback()


@api.post("/accounts/link")
def link_account() -> Any:
    data = json_body()
    session = db()
    try:
        started = start_link(
            session,
            runtime().crypto,
            settings().oauth_callback_url,
            data.get("service_id"),
            data.get("name"),
        )
    except LinkInvalid as exc:
        session.rollback()
        raise validation_error(exc.problems) from None
    session.commit()
    return jsonify(
        {
            "authorize_url": started.authorize_url,
            "state_expires_at": started.state_expires_at.isoformat(),
        }
    )


@api.get("/accounts")
def list_accounts() -> Any:
    accounts = db().scalars(select(Account).order_by(Account.id)).all()
    return jsonify({"accounts": [account_to_dict(a) for a in accounts]})


@api.get("/accounts/<int:account_id>")
def get_account(account_id: int) -> Any:
    return jsonify(account_to_dict(_get(account_id)))


@api.delete("/accounts/<int:account_id>")
def delete_account(account_id: int) -> Any:
    _release(account_id)
    outcome = unlink_account(runtime(), account_id)
    if outcome is None:
        raise not_found("account")
    return jsonify({"deleted": True, "revoked": outcome.revoked, "message": outcome.message})


@api.post("/accounts/<int:account_id>/refresh")
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
    return jsonify(account_to_dict(_get(account_id)))  # the rollback expired the old values


document(
    "/accounts/link",
    "POST",
    "Start linking an account: open authorize_url in a browser and consent",
    request={
        "type": "object",
        "properties": {"service_id": {"type": "integer"}, "name": {"type": "string"}},
        "required": ["service_id", "name"],
    },
    response={
        "type": "object",
        "properties": {
            "authorize_url": {"type": "string", "format": "uri"},
            "state_expires_at": {"type": "string", "format": "date-time"},
        },
    },
)
document(
    "/accounts",
    "GET",
    "List connected accounts",
    response={"type": "object", "properties": {"accounts": {"type": "array", "items": ACCOUNT}}},
)
document("/accounts/{account_id}", "GET", "Get an account", response=ACCOUNT, params=ID_PARAM)
document(
    "/accounts/{account_id}",
    "DELETE",
    "Unlink an account: revoke its refresh token at Salesforce, then delete it",
    response={
        "type": "object",
        "properties": {
            "deleted": {"type": "boolean"},
            "revoked": {"type": "boolean"},
            "message": {"type": ["string", "null"]},
        },
    },
    params=ID_PARAM,
)
document(
    "/accounts/{account_id}/refresh",
    "POST",
    "Refresh the account's access token now",
    response=ACCOUNT,
    params=ID_PARAM,
)
