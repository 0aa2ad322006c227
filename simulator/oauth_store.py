"""Connected apps, users, authorization codes and tokens: the OAuth half of ``SimState``.

``OAuthStore`` is a mixin of ``simulator.state.SimState``: it reads ``lock``, ``settings``,
``counters``, ``ids``, ``org_id``, ``login_url``, ``instance_url`` and ``now()`` from it, and owns
``users``, ``apps``, ``codes``, ``pending``, ``access_tokens`` and ``refresh_tokens``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.errors import OAuthError
from simulator.ids import IdGenerator, random_chars


@dataclass
class ConnectedApp:
    client_id: str
    client_secret: str
    name: str = "Forcebot"
    redirect_uris: list[str] = field(default_factory=list)
    auto_approve: bool = False
    scopes: str = "api refresh_token offline_access"


@dataclass
class User:
    user_id: str
    username: str
    display_name: str
    email: str
    first_name: str
    last_name: str


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    code_challenge: str
    created_at: dt.datetime
    used: bool = False


@dataclass
class RefreshToken:
    id: str
    token: str
    client_id: str
    user_id: str
    scope: str
    created_at: dt.datetime
    revoked: bool = False


@dataclass
class AccessToken:
    id: str
    token: str
    client_id: str
    user_id: str
    scope: str
    issued_at: dt.datetime
    refresh_id: str | None = None
    revoked: bool = False


def _random_code() -> str:
    # Standard base64 with "==" padding and possibly "+" and "/": a client must URL-decode the
    # code from the redirect and URL-encode it again, exactly as with Salesforce's codes.
    return base64.b64encode(secrets.token_bytes(43)).decode()


class OAuthStore:
    lock: threading.RLock
    settings: dict[str, Any]
    counters: dict[str, int]
    ids: IdGenerator
    org_id: str
    login_url: str | None
    instance_url: str | None
    users: dict[str, User]
    apps: dict[str, ConnectedApp]
    codes: dict[str, AuthCode]
    pending: dict[str, dict[str, Any]]
    access_tokens: dict[str, AccessToken]
    refresh_tokens: dict[str, RefreshToken]
    _token_ids: itertools.count[int]
    records: dict[str, dict[str, dict[str, Any]]]

    now: Callable[[], dt.datetime]  # ClockAndCounters.now

    # ------------------------------------------------------------ org, users, apps

    def add_user(self, username: str, first_name: str = "Sim", last_name: str = "User") -> User:
        with self.lock:
            user = User(
                user_id=self.ids.new("005"),
                username=username,
                display_name=f"{first_name} {last_name}",
                email=username,
                first_name=first_name,
                last_name=last_name,
            )
            self.users[user.user_id] = user
            self._add_user_record(user)
            return user

    def _add_user_record(self, user: User) -> None:
        """Mirror a user into the User object, so SOQL (``Owner.Email``) can read it."""
        stamp = self.now()
        creator = next(iter(self.users))  # the org's first user, the default one
        self.records["User"][user.user_id] = {
            "Id": user.user_id,
            "IsDeleted": False,
            "CreatedDate": stamp,
            "CreatedById": creator,
            "LastModifiedDate": stamp,
            "LastModifiedById": creator,
            "SystemModstamp": stamp,
            "Username": user.username,
            "FirstName": user.first_name,
            "LastName": user.last_name,
            "Name": user.display_name,
            "Email": user.email,
            "Alias": (user.first_name[:1] + user.last_name[:4]).lower(),
            "IsActive": True,
            "TimeZoneSidKey": "Europe/London",
            "Title": None,
        }

    def find_user(self, username: str) -> User | None:
        with self.lock:
            for user in self.users.values():
                if user.username.lower() == username.lower():
                    return user
            return None

    def register_app(self, client_id: str, client_secret: str, **fields: Any) -> ConnectedApp:
        """Register or update a connected app (unknown fields raise TypeError)."""
        with self.lock:
            existing = self.apps.get(client_id)
            if existing is not None:
                existing.client_secret = client_secret or existing.client_secret
                for key, value in fields.items():
                    if not hasattr(existing, key):
                        raise TypeError(f"unknown app field {key}")
                    setattr(existing, key, value)
                return existing
            app = ConnectedApp(client_id=client_id, client_secret=client_secret, **fields)
            self.apps[client_id] = app
            return app

    def identity_url(self, user_id: str) -> str:
        return f"{self.login_url or ''}/id/{self.org_id}/{user_id}"

    # ------------------------------------------------------------ OAuth

    def check_client(self, client_id: str | None, client_secret: str | None) -> ConnectedApp:
        app = self.apps.get(client_id or "")
        if app is None:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if not client_secret or not hmac.compare_digest(client_secret, app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        return app

    def issue_code(
        self, client_id: str, redirect_uri: str, scope: str, user_id: str, code_challenge: str
    ) -> str:
        with self.lock:
            code = _random_code()
            self.codes[code] = AuthCode(
                code=code,
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                user_id=user_id,
                code_challenge=code_challenge,
                created_at=self.now(),
            )
            return code

    def _new_access(self, client_id: str, user_id: str, scope: str, refresh_id: str | None):
        token = f"{self.org_id[:15]}!{random_chars(8)}.{secrets.token_urlsafe(72)}"
        record = AccessToken(
            id=f"at{next(self._token_ids)}",
            token=token,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            issued_at=self.now(),
            refresh_id=refresh_id,
        )
        self.access_tokens[token] = record
        return record

    def _new_refresh(self, client_id: str, user_id: str, scope: str) -> RefreshToken:
        token = "5Aep861" + secrets.token_urlsafe(64).replace("-", "").replace("_", "")[:80]
        record = RefreshToken(
            id=f"rt{next(self._token_ids)}",
            token=token,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            created_at=self.now(),
        )
        self.refresh_tokens[token] = record
        return record

    def _token_response(
        self, app: ConnectedApp, access: AccessToken, refresh: RefreshToken | None
    ) -> dict[str, Any]:
        issued_at = str(int(access.issued_at.timestamp() * 1000))
        identity = self.identity_url(access.user_id)
        signature = base64.b64encode(
            hmac.new(
                app.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        body: dict[str, Any] = {"access_token": access.token}
        if refresh is not None:
            body["refresh_token"] = refresh.token
        body.update(
            {
                "signature": signature,
                "scope": access.scope,
                "instance_url": self.instance_url or "",
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
        return body

    @staticmethod
    def _wants_refresh(scope: str) -> bool:
        parts = scope.split()
        return "refresh_token" in parts or "offline_access" in parts

    def exchange_code(
        self,
        client_id: str | None,
        client_secret: str | None,
        code: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
    ) -> tuple[dict[str, Any], str]:
        """authorization_code grant; returns (token response, refresh token id or "")."""
        with self.lock:
            try:
                app = self.check_client(client_id, client_secret)
                record = self.codes.get(code or "")
                if record is None or record.used:
                    raise OAuthError("invalid_grant", "invalid authorization code")
                if record.client_id != app.client_id:
                    raise OAuthError("invalid_grant", "authentication failure")
                lifetime = dt.timedelta(seconds=float(self.settings["code_lifetime_seconds"]))
                if self.now() > record.created_at + lifetime:
                    raise OAuthError("invalid_grant", "expired authorization code")
                if redirect_uri != record.redirect_uri:
                    raise OAuthError(
                        "redirect_uri_mismatch", "redirect_uri must match configuration"
                    )
                if not code_verifier:
                    raise OAuthError("invalid_grant", "invalid code verifier")
                digest = hashlib.sha256(code_verifier.encode("ascii", "replace")).digest()
                expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if not hmac.compare_digest(expected, record.code_challenge):
                    raise OAuthError("invalid_grant", "invalid code verifier")
            except OAuthError:
                self.counters["rejected_codes"] += 1
                raise
            record.used = True
            refresh = None
            if self._wants_refresh(record.scope):
                refresh = self._new_refresh(app.client_id, record.user_id, record.scope)
            access = self._new_access(
                app.client_id, record.user_id, record.scope, refresh.id if refresh else None
            )
            self.counters["code_grants"] += 1
            return self._token_response(app, access, refresh), (refresh.id if refresh else "")

    def refresh(
        self, client_id: str | None, client_secret: str | None, refresh_token: str | None
    ) -> tuple[dict[str, Any], str]:
        """refresh_token grant; returns (token response, id of the refresh token presented)."""
        with self.lock:
            record = self.refresh_tokens.get(refresh_token or "")
            try:
                app = self.check_client(client_id, client_secret)
                if record is None or record.revoked:
                    raise OAuthError("invalid_grant", "expired access/refresh token")
                if record.client_id != app.client_id:
                    raise OAuthError("invalid_grant", "authentication failure")
            except OAuthError:
                self.counters["rejected_refreshes"] += 1
                raise
            new_refresh = None
            if self.settings["rotate_refresh_tokens"]:
                record.revoked = True
                new_refresh = self._new_refresh(app.client_id, record.user_id, record.scope)
            family = new_refresh.id if new_refresh else record.id
            access = self._new_access(app.client_id, record.user_id, record.scope, family)
            if new_refresh is not None:
                # access tokens issued from the old refresh token stay in the same family
                for tok in self.access_tokens.values():
                    if tok.refresh_id == record.id:
                        tok.refresh_id = new_refresh.id
            self.counters["refresh_grants"] += 1
            return self._token_response(app, access, new_refresh), record.id

    def access_token_state(self, token: str | None) -> AccessToken | None:
        """The live access token for ``token``, or None if unknown, revoked or timed out."""
        if not token:
            return None
        with self.lock:
            record = self.access_tokens.get(token)
            if record is None or record.revoked:
                return None
            timeout = dt.timedelta(seconds=float(self.settings["session_timeout_seconds"]))
            if self.now() >= record.issued_at + timeout:
                return None
            return record

    def revoke(self, token: str | None) -> bool:
        with self.lock:
            if token in self.access_tokens:
                self.access_tokens[token].revoked = True
                return True
            record = self.refresh_tokens.get(token or "")
            if record is None:
                return False
            self._revoke_refresh(record)
            return True

    def _revoke_refresh(self, record: RefreshToken) -> None:
        record.revoked = True
        for tok in self.access_tokens.values():
            if tok.refresh_id == record.id:
                tok.revoked = True

    def revoke_refresh_tokens(self, username: str | None = None) -> int:
        """Revoke every refresh token (or one user's) and the sessions issued from them."""
        with self.lock:
            count = 0
            for record in self.refresh_tokens.values():
                if record.revoked:
                    continue
                if username and self.users[record.user_id].username.lower() != username.lower():
                    continue
                self._revoke_refresh(record)
                count += 1
            return count

    def expire_sessions(self) -> int:
        with self.lock:
            count = 0
            for record in self.access_tokens.values():
                if not record.revoked:
                    record.revoked = True
                    count += 1
            return count

    def introspect(self, token: str | None) -> dict[str, Any]:
        with self.lock:
            access = self.access_token_state(token)
            if access is not None:
                user = self.users[access.user_id]
                iat = int(access.issued_at.timestamp())
                return {
                    "active": True,
                    "scope": access.scope,
                    "client_id": access.client_id,
                    "username": user.username,
                    "sub": self.identity_url(user.user_id),
                    "token_type": "access_token",
                    "exp": iat + int(self.settings["session_timeout_seconds"]),
                    "iat": iat,
                    "nbf": iat,
                }
            refresh = self.refresh_tokens.get(token or "")
            if refresh is not None and not refresh.revoked:
                user = self.users[refresh.user_id]
                iat = int(refresh.created_at.timestamp())
                return {
                    "active": True,
                    "scope": refresh.scope,
                    "client_id": refresh.client_id,
                    "username": user.username,
                    "sub": self.identity_url(user.user_id),
                    "token_type": "refresh_token",
                    "iat": iat,
                    "nbf": iat,
                }
            return {"active": False}

    def token_id_for(self, token: str | None) -> str | None:
        if not token:
            return None
        with self.lock:
            record = self.access_tokens.get(token) or self.refresh_tokens.get(token)
            return record.id if record else None
