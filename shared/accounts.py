"""Storing Salesforce token responses on connected accounts (link and refresh alike).

Salesforce's token response carries no `expires_in`: an access token lives for the org's
session timeout, counted from `issued_at` (epoch milliseconds, as a string). The expiry we keep
is therefore `issued_at + service.session_timeout_minutes`, unless introspection gave an `exp`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .crypto import Crypto
from .models import Account, Service, isoformat, utcnow
from .models.accounts import ACTIVE


def parse_issued_at(value: Any) -> datetime | None:
    """Salesforce's `issued_at` (epoch milliseconds as a string) as an aware datetime."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def token_update_values(
    token: Mapping[str, Any],
    crypto: Crypto,
    service: Service,
    *,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """Column values for a token response (for an UPDATE), status active included.

    No `refresh_token_enc` if none came.
    """
    values: dict[str, Any] = {
        "access_token_enc": crypto.encrypt(str(token["access_token"])),
        "status": ACTIVE,
        "status_reason": None,
    }
    if token.get("refresh_token"):
        values["refresh_token_enc"] = crypto.encrypt(str(token["refresh_token"]))
    if token.get("instance_url"):
        values["instance_url"] = str(token["instance_url"]).rstrip("/")
    if token.get("id"):
        values["identity_url"] = str(token["id"])
    issued_at = parse_issued_at(token.get("issued_at")) or utcnow()
    values["token_issued_at"] = issued_at
    values["token_expires_at"] = expires_at or issued_at + timedelta(
        minutes=service.session_timeout_minutes
    )
    return values


def apply_token_response(
    account: Account,
    token: Mapping[str, Any],
    crypto: Crypto,
    service: Service,
    *,
    expires_at: datetime | None = None,
) -> None:
    """Save a token response: tokens encrypted, instance and identity URLs, issue and expiry.

    A response without `refresh_token` (a refresh with rotation off) keeps the stored one.
    `token_version` is bumped so concurrent writers can compare-and-swap on it.
    """
    for name, value in token_update_values(token, crypto, service, expires_at=expires_at).items():
        setattr(account, name, value)
    account.token_version = (account.token_version or 0) + 1


def account_to_dict(account: Account) -> dict[str, Any]:
    """SPEC's account JSON: identity, token times and API usage, never a token."""
    return {
        "id": account.id,
        "name": account.name,
        "service_id": account.service_id,
        "status": account.status,
        "status_reason": account.status_reason,
        "instance_url": account.instance_url,
        "username": account.username,
        "organization_id": account.organization_id,
        "token_issued_at": isoformat(account.token_issued_at),
        "token_expires_at": isoformat(account.token_expires_at),
        "last_refresh_at": isoformat(account.last_refresh_at),
        "refresh_count": account.refresh_count,
        "api_usage": {
            "used": account.api_usage_used,
            "max": account.api_usage_max,
            "at": isoformat(account.api_usage_at),
        },
    }
