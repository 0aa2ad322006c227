"""The simulator's shared in-memory state: one lock guards everything.

Both Flask apps (login host and instance host) hold the same ``SimState``. Every public method
takes ``self.lock``; callers may also hold it (it is re-entrant) to group several steps.
"""

from __future__ import annotations

import base64
import collections
import copy
import datetime as dt
import hashlib
import hmac
import itertools
import secrets
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator import schema, soql
from simulator.ids import BASE62, IdGenerator, is_valid_id, to18

UTC = dt.UTC
DEFAULT_ORG_NAME = "Acme Simulated Org"
DEFAULT_USERNAME = "admin@acme.sim"
API_VERSIONS = [f"{v}.0" for v in range(31, 64)]
LATEST_API_VERSION = "62.0"


def fmt_dt(value: dt.datetime) -> str:
    """Salesforce's datetime format: 2026-01-01T00:00:00.000+0000."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class SfError(Exception):
    """A REST error as Salesforce sends it: ``[{"message", "errorCode", "fields"?}]``."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


class OAuthError(Exception):
    """An OAuth endpoint error: HTTP 400 ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


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


@dataclass
class Fault:
    id: int
    prefix: str
    count: int = 1
    status: int | None = 503
    error_code: str = "SERVER_UNAVAILABLE"
    message: str = "Service temporarily unavailable"
    delay_seconds: float = 0.0
    retry_after: str | int | None = None
    html: bool = False
    host: str | None = None  # "login", "instance" or None for both


DEFAULT_SETTINGS: dict[str, Any] = {
    "rotate_refresh_tokens": False,
    "session_timeout_seconds": 7200,
    "code_lifetime_seconds": 900,
    "api_max": 100000,
    "default_batch_size": 2000,
    "log_limit": 20000,
}

COUNTER_NAMES = (
    "code_grants",
    "refresh_grants",
    "rejected_refreshes",
    "rejected_codes",
    "api_calls",
    "peak_concurrency",
    "in_flight",
)


def _random_code() -> str:
    # Standard base64 with "==" padding and possibly "+" and "/": a client must URL-decode the
    # code from the redirect and URL-encode it again, exactly as with Salesforce's codes.
    return base64.b64encode(secrets.token_bytes(43)).decode()


def _random_chars(n: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(n))


class SimState:
    def __init__(self, org_name: str = DEFAULT_ORG_NAME) -> None:
        self.lock = threading.RLock()
        self.login_url: str | None = None
        self.instance_url: str | None = None
        self.org_name = org_name
        self._reset_locked()

    # ------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget everything (apps, tokens, records, faults, log, counters, settings)."""
        with self.lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self.ids = IdGenerator()
        self.org_id = self.ids.new("00D")
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.api_usage = 0
        self.clock_offset = dt.timedelta(0)
        self.users: dict[str, User] = {}
        self.apps: dict[str, ConnectedApp] = {}
        self.codes: dict[str, AuthCode] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in schema.OBJECTS}
        self.custom_fields: dict[str, set[str]] = {o: set() for o in schema.OBJECTS}
        self.locators: dict[str, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self._fault_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self._case_numbers = itertools.count(1001)
        self.log: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=int(self.settings["log_limit"])
        )
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.default_user = self.add_user(DEFAULT_USERNAME, "Admin", "User")

    # ------------------------------------------------------------ clock and settings

    def now(self) -> dt.datetime:
        """The simulator's clock (real UTC time plus any offset), to the millisecond."""
        value = dt.datetime.now(UTC) + self.clock_offset
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    def advance_clock(self, seconds: float) -> dt.datetime:
        with self.lock:
            self.clock_offset += dt.timedelta(seconds=seconds)
            return self.now()

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        with self.lock:
            for key, value in changes.items():
                if key == "api_usage":
                    self.api_usage = int(value)
                    continue
                if key not in self.settings:
                    raise KeyError(key)
                self.settings[key] = value
            return self.get_settings()

    def get_settings(self) -> dict[str, Any]:
        with self.lock:
            return {**self.settings, "api_usage": self.api_usage}

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
            return user

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
        token = f"{self.org_id[:15]}!{_random_chars(8)}.{secrets.token_urlsafe(72)}"
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

    # ------------------------------------------------------------ limits, counters, faults

    def count_api_call(self) -> bool:
        """Count one REST call; False (and nothing counted) when the allocation is spent."""
        with self.lock:
            if self.api_usage >= int(self.settings["api_max"]):
                return False
            self.api_usage += 1
            self.counters["api_calls"] += 1
            return True

    def limit_info(self) -> str:
        with self.lock:
            return f"api-usage={self.api_usage}/{self.settings['api_max']}"

    def enter_request(self) -> None:
        with self.lock:
            self.counters["in_flight"] += 1
            if self.counters["in_flight"] > self.counters["peak_concurrency"]:
                self.counters["peak_concurrency"] = self.counters["in_flight"]

    def leave_request(self) -> None:
        with self.lock:
            self.counters["in_flight"] -= 1

    def get_counters(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counters)

    def reset_counters(self) -> None:
        with self.lock:
            in_flight = self.counters["in_flight"]
            self.counters = dict.fromkeys(COUNTER_NAMES, 0)
            self.counters["in_flight"] = in_flight

    def add_fault(self, prefix: str, **fields: Any) -> Fault:
        with self.lock:
            fault = Fault(id=next(self._fault_ids), prefix=prefix, **fields)
            self.faults.append(fault)
            return fault

    def take_fault(self, path: str, role: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count <= 0 or not path.startswith(fault.prefix):
                    continue
                if fault.host and fault.host != role:
                    continue
                fault.count -= 1
                taken = copy.copy(fault)
                self.faults = [f for f in self.faults if f.count > 0]
                return taken
            return None

    def list_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(f) for f in self.faults]

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = []

    def record_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)

    def get_log(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            entries = list(self.log)
        return entries[-limit:] if limit else entries

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # ------------------------------------------------------------ records

    def resolve_object(self, name: str) -> str:
        obj = schema.canonical_object(name)
        if obj is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def field_type(self, obj: str, name: str) -> tuple[str, str] | None:
        fields = schema.all_fields(obj)
        for fname, ftype in fields.items():
            if fname.lower() == name.lower():
                return fname, ftype
        if name.lower().endswith("__c"):
            for fname in self.custom_fields[obj]:
                if fname.lower() == name.lower():
                    return fname, "anyType"
            return name, "anyType"
        return None

    def _convert(self, obj: str, fname: str, ftype: str, value: Any) -> Any:
        if value is None:
            return False if ftype == "boolean" else None
        bad = SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {ftype} from {type(value).__name__} value "
            f"{value!r} for field {fname}",
        )
        if ftype == "anyType":
            if isinstance(value, (dict, list)):
                raise bad
            return value
        if ftype == "boolean":
            if not isinstance(value, bool):
                raise bad
            return value
        if ftype == "datetime":
            if not isinstance(value, str):
                raise bad
            try:
                return soql.parse_datetime(value)
            except ValueError:
                raise bad from None
        if ftype == "date":
            if not isinstance(value, str):
                raise bad
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                raise bad from None
        if ftype in ("double", "int", "currency", "percent"):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, (int, float)):
                return value
            if isinstance(value, str):
                try:
                    return float(value) if "." in value else int(value)
                except ValueError:
                    raise bad from None
            raise bad
        if ftype in ("reference", "id"):
            if value == "":
                return None
            target = schema.REFERENCE_TARGETS.get(fname)
            prefix = schema.key_prefix(target) if target else None
            if not is_valid_id(value) or (prefix and not value.startswith(prefix)):
                label = f"{target} ID" if target else "ID"
                raise SfError(
                    400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [fname]
                )
            return to18(value)
        if isinstance(value, (dict, list)):
            raise bad
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def _apply_fields(
        self, obj: str, record: dict[str, Any], body: dict[str, Any], creating: bool
    ) -> None:
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        changes: dict[str, Any] = {}
        for key, value in body.items():
            if key == "attributes":
                continue
            resolved = self.field_type(obj, key)
            if resolved is None:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {obj}",
                    [key],
                )
            fname, ftype = resolved
            if not schema.writable(obj, fname) and not fname.endswith("__c"):
                raise SfError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to {'create' if creating else 'update'} fields: {fname}. Please "
                    "check the security settings of this field and verify that it is "
                    "read/write for your profile or permission set.",
                    [fname],
                )
            if fname.endswith("__c"):
                self.custom_fields[obj].add(fname)
            changes[fname] = self._convert(obj, fname, ftype, value)
        merged = {**record, **changes}
        missing = [f for f in schema.OBJECTS[obj]["required"] if merged.get(f) in (None, "")]
        if missing:
            raise SfError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        record.update(changes)
        self._compute(obj, record)

    def _compute(self, obj: str, record: dict[str, Any]) -> None:
        if obj in ("Contact", "Lead"):
            record["Name"] = " ".join(
                p for p in (record.get("FirstName"), record.get("LastName")) if p
            )
        elif obj == "Case":
            record["IsClosed"] = record.get("Status") == "Closed"
        elif obj == "Opportunity":
            stage = record.get("StageName") or ""
            record["IsClosed"] = stage.startswith("Closed")
            record["IsWon"] = stage == "Closed Won"

    def _blank(self, obj: str, stamp: dt.datetime) -> dict[str, Any]:
        record: dict[str, Any] = {
            name: (False if ftype == "boolean" else None)
            for name, ftype in schema.all_fields(obj).items()
        }
        record.update(schema.OBJECTS[obj].get("defaults", {}))
        record.update(
            {
                "Id": self.ids.new(schema.key_prefix(obj)),
                "IsDeleted": False,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "CreatedById": self.default_user.user_id,
                "LastModifiedById": self.default_user.user_id,
                "OwnerId": self.default_user.user_id,
            }
        )
        if obj == "Case":
            record["CaseNumber"] = f"{next(self._case_numbers):08d}"
        return record

    def create_record(
        self, obj: str, body: dict[str, Any], stamp: dt.datetime | None = None
    ) -> str:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._blank(obj, stamp or self.now())
            self._apply_fields(obj, record, body, creating=True)
            self.records[obj][record["Id"]] = record
            return record["Id"]

    def _find(self, obj: str, record_id: str, allow_deleted: bool = False) -> dict[str, Any]:
        try:
            full = to18(record_id)
        except ValueError:
            full = None
        record = self.records[obj].get(full) if full else None
        if record is None:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if record["IsDeleted"] and not allow_deleted:
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def get_record(
        self, obj: str, record_id: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            names = None
            if fields:
                names = []
                for name in fields:
                    resolved = self.field_type(obj, name)
                    if resolved is None:
                        raise SfError(
                            400,
                            "INVALID_FIELD",
                            f"No such column '{name}' on sobject of type {obj}",
                        )
                    names.append(resolved[0])
            return self.to_json(obj, record, names)

    def update_record(
        self, obj: str, record_id: str, body: dict[str, Any], stamp: dt.datetime | None = None
    ) -> None:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            staged = dict(record)
            self._apply_fields(obj, staged, body, creating=False)
            stamp = stamp or self.now()
            staged["LastModifiedDate"] = stamp
            staged["SystemModstamp"] = stamp
            record.update(staged)

    def delete_record(self, obj: str, record_id: str, stamp: dt.datetime | None = None) -> None:
        with self.lock:
            obj = self.resolve_object(obj)
            record = self._find(obj, record_id)
            stamp = stamp or self.now()
            record["IsDeleted"] = True
            record["LastModifiedDate"] = stamp
            record["SystemModstamp"] = stamp
            record["_deleted_at"] = stamp

    def upsert_record(
        self, obj: str, ext_field: str, value: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """Upsert by external id; returns (id, created)."""
        with self.lock:
            obj = self.resolve_object(obj)
            resolved = self.field_type(obj, ext_field)
            if resolved is None or (resolved[0] != "Id" and not resolved[0].endswith("__c")):
                raise SfError(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: {ext_field}",
                )
            fname = resolved[0]
            if fname == "Id":
                if value:
                    self.update_record(obj, value, body)
                    return to18(value), False
                return self.create_record(obj, body), True
            matches = [
                r
                for r in self.records[obj].values()
                if not r["IsDeleted"] and r.get(fname) is not None and str(r[fname]) == value
            ]
            if len(matches) > 1:
                raise SfError(
                    300,
                    "MULTIPLE_CHOICES",
                    f"More than one record found for external id field {fname} with value {value}",
                )
            payload = {k: v for k, v in body.items() if k.lower() != fname.lower()}
            if matches:
                self.update_record(obj, matches[0]["Id"], payload)
                return matches[0]["Id"], False
            self.custom_fields[obj].add(fname)
            return self.create_record(obj, {**payload, fname: value}), True

    def to_json(
        self, obj: str, record: dict[str, Any], names: list[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{LATEST_API_VERSION}/sobjects/{obj}/{record['Id']}",
            }
        }
        if names is None:
            names = [k for k in record if not k.startswith("_")]
        for name in names:
            out[name] = _json_value(record.get(name))
        return out

    def seed(
        self,
        obj: str,
        count: int,
        per_timestamp: int = 1,
        fields: dict[str, Any] | None = None,
        start: dt.datetime | None = None,
    ) -> list[str]:
        """Create ``count`` records, ``per_timestamp`` of them sharing each SystemModstamp (one
        second apart, in the past unless ``start`` is given). String values in ``fields`` may
        use ``{n}`` for the record's number (0-based)."""
        with self.lock:
            obj = self.resolve_object(obj)
            per_timestamp = max(1, int(per_timestamp))
            groups = (count + per_timestamp - 1) // per_timestamp
            if start is None:
                start = self.now().replace(microsecond=0) - dt.timedelta(seconds=groups + 1)
            ids = []
            for n in range(count):
                values = _default_seed_fields(obj, n)
                for key, value in (fields or {}).items():
                    values[key] = value.format(n=n) if isinstance(value, str) else value
                stamp = start + dt.timedelta(seconds=n // per_timestamp)
                ids.append(self.create_record(obj, values, stamp=stamp))
            return ids

    def all_records(self, obj: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            obj = self.resolve_object(obj)
            return [
                self.to_json(obj, r)
                for r in self.records[obj].values()
                if include_deleted or not r["IsDeleted"]
            ]

    # ------------------------------------------------------------ queries

    def run_query(
        self, text: str, include_deleted: bool, batch_size: int, version: str
    ) -> dict[str, Any]:
        with self.lock:
            try:
                query = soql.parse(text)
            except soql.SoqlError as exc:
                raise SfError(400, exc.error_code, exc.message) from None
            obj = schema.canonical_object(query.sobject)
            if obj is None:
                raise SfError(
                    400,
                    "INVALID_TYPE",
                    f"sObject type '{query.sobject}' is not supported. If you are attempting "
                    "to use a custom object, be sure to append the '__c' after the entity name.",
                )

            def resolve(name: str) -> tuple[str, str]:
                resolved = self.field_type(obj, name)
                if resolved is None:
                    raise soql.SoqlError(
                        f"No such column '{name}' on entity '{obj}'. If you are attempting to "
                        "use a custom field, be sure to append the '__c' after the custom "
                        "field name.",
                        "INVALID_FIELD",
                    )
                return resolved

            try:
                names = [resolve(f)[0] for f in query.fields]
                predicate = soql.compile_where(query.where, resolve)
                rows = [
                    r
                    for r in self.records[obj].values()
                    if (include_deleted or not r["IsDeleted"]) and predicate(r)
                ]
                if query.order_by:
                    rows = soql.sort_records(rows, query.order_by, resolve)
            except soql.SoqlError as exc:
                raise SfError(400, exc.error_code, exc.message) from None
            if query.offset:
                rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            if query.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            records = []
            for row in rows:
                item = self.to_json(obj, row, names)
                item["attributes"]["url"] = f"/services/data/v{version}/sobjects/{obj}/{row['Id']}"
                records.append(item)
            return self._page(records, 0, batch_size, version, locator=None)

    def _page(
        self,
        records: list[dict[str, Any]],
        offset: int,
        batch_size: int,
        version: str,
        locator: str | None,
    ) -> dict[str, Any]:
        end = offset + batch_size
        body: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records)}
        if not body["done"]:
            if locator is None:
                locator = "01g" + _random_chars(15)
                self.locators[locator] = {
                    "records": records,
                    "batch_size": batch_size,
                    "created": self.now(),
                }
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        elif locator is not None:
            self.locators.pop(locator, None)
        body["records"] = records[offset:end]
        return body

    def query_more(self, locator: str, offset: int, version: str) -> dict[str, Any]:
        with self.lock:
            entry = self.locators.get(locator)
            if entry is None or offset < 0 or offset > len(entry["records"]):
                raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(entry["records"], offset, entry["batch_size"], version, locator)

    def updated_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            ids = [
                r["Id"]
                for r in self.records[obj].values()
                if not r["IsDeleted"] and start <= r["SystemModstamp"] <= end
            ]
            return {"ids": ids, "latestDateCovered": fmt_dt(min(end, self.now()))}

    def deleted_ids(self, obj: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        with self.lock:
            obj = self.resolve_object(obj)
            deleted = [
                {"id": r["Id"], "deletedDate": fmt_dt(r["_deleted_at"])}
                for r in self.records[obj].values()
                if r["IsDeleted"] and start <= r["_deleted_at"] <= end
            ]
            earliest = min(
                (r["CreatedDate"] for r in self.records[obj].values()), default=self.now()
            )
            return {
                "deletedRecords": deleted,
                "earliestDateAvailable": fmt_dt(earliest),
                "latestDateCovered": fmt_dt(min(end, self.now())),
            }


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return fmt_dt(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _default_seed_fields(obj: str, n: int) -> dict[str, Any]:
    if obj == "Account":
        return {"Name": f"Seed Account {n}"}
    if obj == "Contact":
        return {"FirstName": "Seed", "LastName": f"Contact {n}", "Email": f"seed{n}@example.com"}
    if obj == "Lead":
        return {"LastName": f"Lead {n}", "Company": f"Seed Co {n}", "Email": f"lead{n}@example.com"}
    if obj == "Case":
        return {"Subject": f"Seed case {n}"}
    if obj == "Opportunity":
        return {
            "Name": f"Seed Opportunity {n}",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
        }
    return {}
