"""Linking connected accounts through Salesforce's consent screen, and unlinking them.

    start_link     validate, store an OAuthState (state hashed, PKCE verifier encrypted,
                   10-minute life, optionally bound to a browser session) -> authorize URL
    complete_link  consume the state (single use, committed before anything is sent),
                   exchange the code, read the identity, then upsert the account by
                   (service, org, user) so relinking updates instead of duplicating
    unlink_account / delete_service   revoke at Salesforce, then delete

`complete_link`, `unlink_account` and `delete_service` take the Runtime because they talk to
Salesforce between transactions: no database transaction (on SQLite, the write lock) is
held across a network call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import webhooks
from .accounts import apply_token_response
from .crypto import Crypto, DecryptionError
from .models import Account, OAuthState, Service, utcnow
from .runtime import Runtime
from .salesforce import oauth
from .salesforce.errors import SalesforceError, TokenError

log = logging.getLogger("forcebot.linking")

STATE_LIFETIME = timedelta(minutes=10)
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class LinkInvalid(ValueError):
    """The link cannot start: `problems` lists each as "field: message"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class LinkFailed(Exception):
    """The callback cannot complete the link. `code` is stable, `message` says what happened
    in plain words and `hint` what to do next."""

    def __init__(self, code: str, message: str, hint: str, *, service_id: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.service_id = service_id


def binding_hash(value: str) -> str:
    return hashlib.sha256(("forcebot-link:" + value).encode()).hexdigest()


@dataclass(frozen=True)
class StartedLink:
    authorize_url: str
    state_expires_at: datetime
    service_id: int
    account_name: str


def start_link(
    session: Session,
    crypto: Crypto,
    redirect_uri: str,
    service_id: Any,
    account_name: Any,
    *,
    session_binding: str | None = None,
) -> StartedLink:
    """Store a pending authorization and return Salesforce's authorize URL (caller commits).

    `session_binding` is a secret kept in the browser session that started the link; the
    callback then only completes in that browser. Links started through the API are unbound:
    whoever opens the URL and consents completes them.
    """
    problems: list[str] = []
    service = None
    if isinstance(service_id, str) and re.fullmatch(r"[0-9]{1,18}", service_id.strip()):
        # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
        service_id = int(service_id.strip())
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        problems.append("service_id: required, the id of a service")
    elif not 1 <= service_id < 2**31:
        # Beyond the INTEGER id column's range PostgreSQL raises instead of finding nothing.
        problems.append("service_id: no service with that id")
    else:
        service = session.get(Service, service_id)
        if service is None:
            problems.append(f"service_id: no service with id {service_id}")
    name = account_name.strip() if isinstance(account_name, str) else ""
    if not name:
        problems.append("name: required, e.g. acme-prod")
    elif not ACCOUNT_NAME.match(name):
        problems.append(
            "name: letters, digits, '-', '_' and '.' only, starting with a letter or digit "
            "(at most 100)"
        )
    elif service is not None:
        other = session.scalar(select(Account).where(Account.name == name))
        if other is not None and other.service_id != service.id:
            problems.append(f"name: the account {name!r} belongs to another service")
    if problems or service is None:
        raise LinkInvalid(problems)

    request = oauth.authorization_request(
        service.login_url, service.client_id, redirect_uri, service.scopes
    )
    now = utcnow()
    state = OAuthState(
        state_hash=oauth.hash_state(request.state),
        service_id=service.id,
        account_name=name,
        code_verifier_enc=crypto.encrypt(request.code_verifier),
        session_binding=binding_hash(session_binding) if session_binding else None,
        created_at=now,
        expires_at=now + STATE_LIFETIME,
    )
    session.add(state)
    # Expired states are useless; drop them here rather than from a periodic job.
    session.execute(delete(OAuthState).where(OAuthState.expires_at < now - STATE_LIFETIME))
    session.flush()
    log.info("link=started service=%s account=%s", service.id, name)
    return StartedLink(request.url, state.expires_at, service.id, name)


_ERROR_TEXT: dict[str, tuple[str, str]] = {
    "access_denied": (
        "Access was denied on Salesforce's consent screen, so no account was linked.",
        "To link the account, start again and choose Allow.",
    ),
    "invalid_client": (
        "Salesforce did not accept the service's consumer key and secret.",
        "Copy the consumer key and secret again from the connected app in Salesforce Setup "
        "into the service, then link again.",
    ),
    "invalid_client_id": (
        "Salesforce does not know the service's consumer key.",
        "Copy the consumer key again from the connected app in Salesforce Setup (a new "
        "connected app can take a few minutes to be usable), then link again.",
    ),
    "invalid_client_credentials": (
        "Salesforce did not accept the service's consumer secret.",
        "Copy the consumer secret again from the connected app in Salesforce Setup into the "
        "service, then link again.",
    ),
    "redirect_uri_mismatch": (
        "The callback URL is not one of the connected app's callback URLs.",
        "Add Forcebot's callback URL to the connected app in Salesforce Setup "
        "(it must match exactly), then link again.",
    ),
    "invalid_scope": (
        "The connected app does not allow the scopes the service asks for.",
        "Add the scopes to the connected app's OAuth scopes in Salesforce Setup, or change "
        "the service's scopes, then link again.",
    ),
    "invalid_grant": (
        "Salesforce refused the authorization code: it expired, was already used, or the "
        "PKCE verifier did not match.",
        "Start the link again from Forcebot and finish it within a few minutes.",
    ),
    "unsupported_response_type": (
        "Salesforce refused the kind of authorization Forcebot asked for.",
        "Check that the connected app has OAuth enabled, then link again.",
    ),
    "OAUTH_APP_BLOCKED": (
        "The connected app is blocked in this org.",
        "Ask a Salesforce administrator to unblock it, then link again.",
    ),
    "OAUTH_APP_ACCESS_DENIED": (
        "This user is not allowed to use the connected app.",
        "Ask a Salesforce administrator to grant the user access (profile or permission set), "
        "then link again.",
    ),
}


def describe_oauth_error(
    error: str, description: str | None, *, service_id: int | None = None
) -> LinkFailed:
    """Salesforce's `error`/`error_description` in plain words, with what to do next."""
    message, hint = _ERROR_TEXT.get(
        error,
        (
            "Salesforce returned an error, so no account was linked.",
            "Start the link again; if it keeps happening, check the connected app's settings "
            "in Salesforce Setup.",
        ),
    )
    said = f" Salesforce said: {error}" + (f" ({description})" if description else "") + "."
    return LinkFailed(error, message + said, hint, service_id=service_id)


@dataclass(frozen=True)
class PendingLink:
    """What the code exchange needs; the secrets stay out of its repr (logs, tracebacks)."""

    service_id: int
    account_name: str
    login_url: str
    client_id: str
    session_bound: bool
    code_verifier: str = field(repr=False)
    client_secret: str = field(repr=False)


_START_AGAIN = "Start the link again from Forcebot's Accounts page (or POST /api/v1/accounts/link)."


def consume_state(
    session: Session, crypto: Crypto, state: str | None, *, session_binding: str | None = None
) -> PendingLink:
    """Mark the state used (single use) and return what the exchange needs (caller commits).

    Raises LinkFailed for a missing, unknown, expired, reused or foreign-browser state.
    """
    if not state:
        raise LinkFailed(
            "missing_state",
            "The request has no state parameter, so it cannot be matched to a link that "
            "Forcebot started. Nothing was saved.",
            _START_AGAIN,
        )
    row = session.scalar(select(OAuthState).where(OAuthState.state_hash == oauth.hash_state(state)))
    if row is None:
        raise LinkFailed(
            "unknown_state",
            "This link request is unknown to Forcebot (forged, or from another installation). "
            "Nothing was saved.",
            _START_AGAIN,
        )
    now = utcnow()
    # Compare-and-set: of two concurrent callbacks with the same state only one wins.
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(OAuthState)
            .where(OAuthState.id == row.id, OAuthState.used_at.is_(None))
            .values(used_at=now)
        ),
    ).rowcount
    if not claimed:
        raise LinkFailed(
            "state_reused",
            "This link request was already used; each one works once. Nothing was saved.",
            _START_AGAIN,
            service_id=row.service_id,
        )
    if row.expires_at <= now:
        raise LinkFailed(
            "state_expired",
            "This link request expired (it is valid for 10 minutes). Nothing was saved.",
            _START_AGAIN,
            service_id=row.service_id,
        )
    if row.session_binding is not None and not (
        session_binding and hmac.compare_digest(row.session_binding, binding_hash(session_binding))
    ):
        raise LinkFailed(
            "wrong_browser",
            "This link was started in another browser session, so it cannot be finished here. "
            "Nothing was saved.",
            "Start the link again in this browser.",
            service_id=row.service_id,
        )
    service = session.get(Service, row.service_id)
    if service is None:
        raise LinkFailed(
            "service_deleted",
            "The service of this link was deleted. Nothing was saved.",
            "Create the service again, then link.",
        )
    return PendingLink(
        service_id=service.id,
        account_name=row.account_name,
        login_url=service.login_url,
        client_id=service.client_id,
        session_bound=row.session_binding is not None,
        code_verifier=crypto.decrypt(row.code_verifier_enc),
        client_secret=crypto.decrypt(service.client_secret_enc),
    )


def _consume_error_state(runtime: Runtime, state: str | None) -> int | None:
    """Burn the state of an error callback (Deny etc.); returns its service id if known."""
    if not state:
        return None
    with runtime.Session.begin() as session:
        row = session.scalar(
            select(OAuthState).where(OAuthState.state_hash == oauth.hash_state(state))
        )
        if row is None:
            return None
        if row.used_at is None:
            row.used_at = utcnow()
        return row.service_id


@dataclass(frozen=True)
class LinkResult:
    account_id: int
    account_name: str
    username: str
    organization_id: str
    created: bool
    session_bound: bool


def complete_link(
    runtime: Runtime,
    params: dict[str, str],
    *,
    redirect_uri: str,
    session_binding: str | None = None,
    timeout: float = oauth.DEFAULT_TIMEOUT,
) -> LinkResult:
    """Finish a link from the callback's query parameters; raises LinkFailed, saving nothing."""
    state = params.get("state")
    if params.get("error"):
        service_id = _consume_error_state(runtime, state)
        raise describe_oauth_error(
            params["error"], params.get("error_description"), service_id=service_id
        )
    # The state is checked (and burnt) before anything else, so a forged request learns
    # nothing and a replay cannot use the code twice.
    with runtime.Session() as session:
        try:
            pending = consume_state(session, runtime.crypto, state, session_binding=session_binding)
        except LinkFailed as exc:
            # Commit anyway: a state refused as expired or from another browser stays burnt.
            session.commit()
            log.info("link=refused reason=%s", exc.code)
            raise
        except DecryptionError:
            session.commit()
            raise LinkFailed(
                "decryption_failed",
                "Forcebot cannot decrypt the service's secret or the link's verifier "
                "(FORCEBOT_ENCRYPTION_KEYS changed?). Nothing was saved.",
                "Restore the encryption key, then link again.",
            ) from None
        session.commit()
    code = params.get("code")
    if not code:
        raise LinkFailed(
            "missing_code",
            "Salesforce's answer has no authorization code. Nothing was saved.",
            _START_AGAIN,
            service_id=pending.service_id,
        )
    try:
        token = oauth.exchange_code(
            pending.login_url,
            pending.client_id,
            pending.client_secret,
            redirect_uri,
            code,
            pending.code_verifier,
            timeout=timeout,
        )
        identity = oauth.fetch_identity(
            str(token.get("id") or ""), str(token["access_token"]), timeout=timeout
        )
    except TokenError as exc:
        log.info("link=failed service=%s error=%s", pending.service_id, exc.error)
        raise describe_oauth_error(
            exc.error, exc.error_description, service_id=pending.service_id
        ) from None
    except SalesforceError as exc:
        raise LinkFailed(
            exc.error_code or "connection_error",
            f"Forcebot could not reach Salesforce at {pending.login_url} ({exc.message}). "
            "Nothing was saved.",
            "Check the service's login URL and the network, then link again.",
            service_id=pending.service_id,
        ) from None
    for attempt in range(2):
        try:
            return _save_account(runtime, pending, token, identity)
        except IntegrityError:
            # A concurrent link of the same user inserted first; the retry updates it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _save_account(
    runtime: Runtime, pending: PendingLink, token: dict[str, Any], identity: dict[str, Any]
) -> LinkResult:
    user_id = str(identity["user_id"])
    org_id = str(identity["organization_id"])
    with runtime.Session.begin() as session:
        service = session.get(Service, pending.service_id)
        if service is None:
            raise LinkFailed(
                "service_deleted",
                "The service was deleted while the link was in progress. Nothing was saved.",
                "Create the service again, then link.",
            )
        # Relinking the same Salesforce user and org updates that account (and keeps its
        # name, which behaviors refer to); otherwise the named account of this service (a
        # relink, possibly as another user) or a new one.
        account = session.scalar(
            select(Account).where(
                Account.service_id == service.id,
                Account.organization_id == org_id,
                Account.user_id == user_id,
            )
        )
        if account is None:
            account = session.scalar(select(Account).where(Account.name == pending.account_name))
            if account is not None and account.service_id != service.id:
                raise LinkFailed(
                    "name_taken",
                    f"The account name {pending.account_name!r} is now used by another "
                    "service's account. Nothing was saved.",
                    "Link again with another name.",
                    service_id=service.id,
                )
        created = account is None
        if account is None:
            account = Account(service_id=service.id, name=pending.account_name)
            session.add(account)
        account.user_id = user_id
        account.organization_id = org_id
        account.username = str(identity["username"])
        apply_token_response(account, token, runtime.crypto, service)
        account.last_refresh_error = None
        account.consecutive_refresh_failures = 0
        account.quota_exhausted_until = None
        session.flush()
        webhooks.account_event(session, webhooks.ACCOUNT_LINKED, account.id)
        log.info("link=completed service=%s account=%s created=%s", service.id, account.id, created)
        return LinkResult(
            account_id=account.id,
            account_name=account.name,
            username=account.username or "",
            organization_id=org_id,
            created=created,
            session_bound=pending.session_bound,
        )


@dataclass(frozen=True)
class RevokeOutcome:
    name: str
    revoked: bool
    message: str | None = None


def _token_to_revoke(crypto: Crypto, account: Account) -> str | None:
    """The refresh token (revoking it ends the whole grant), else the access token."""
    try:
        return crypto.decrypt_optional(account.refresh_token_enc) or crypto.decrypt_optional(
            account.access_token_enc
        )
    except DecryptionError:
        return None


def _revoke_at_salesforce(name: str, login_url: str, token: str | None) -> RevokeOutcome:
    if token is None:
        return RevokeOutcome(name, False, "no token to revoke")
    try:
        revoked = oauth.revoke_token(login_url, token)
    except SalesforceError as exc:
        return RevokeOutcome(name, False, f"could not revoke at Salesforce: {exc.message}")
    if not revoked:
        return RevokeOutcome(name, False, "Salesforce did not confirm the revocation")
    return RevokeOutcome(name, True)


def unlink_account(runtime: Runtime, account_id: int) -> RevokeOutcome | None:
    """Revoke the account's refresh token at Salesforce, then delete it; None if not found.

    The account is deleted even when Salesforce cannot be reached; the outcome says so, and
    the grant can then be revoked in Salesforce Setup (Connected Apps OAuth Usage).
    """
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        if account is None:
            return None
        login_url = account.service.login_url
        token = _token_to_revoke(runtime.crypto, account)
        name = account.name
    outcome = _revoke_at_salesforce(name, login_url, token)
    with runtime.Session.begin() as session:
        session.execute(delete(Account).where(Account.id == account_id))
    log.info("account=%s unlinked revoked=%s", account_id, outcome.revoked)
    return outcome


def delete_service(runtime: Runtime, service_id: int) -> list[RevokeOutcome] | None:
    """Revoke every account of the service at Salesforce, then delete all of it."""
    with runtime.Session() as session:
        service = session.get(Service, service_id)
        if service is None:
            return None
        login_url = service.login_url
        pending = [
            (account.name, _token_to_revoke(runtime.crypto, account))
            for account in service.accounts
        ]
    outcomes = [_revoke_at_salesforce(name, login_url, token) for name, token in pending]
    with runtime.Session.begin() as session:
        session.execute(delete(OAuthState).where(OAuthState.service_id == service_id))
        session.execute(delete(Account).where(Account.service_id == service_id))
        session.execute(delete(Service).where(Service.id == service_id))
    log.info("service=%s deleted accounts=%s", service_id, len(outcomes))
    return outcomes
