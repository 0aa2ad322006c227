"""Connected services: validation and create/update/delete, shared by the page and the API.

Every problem is reported at once as "field: message"; nothing is written unless all fields
are valid. The client secret is write-only: it is stored encrypted and an empty value on
update means "keep the stored one".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .behaviors.definition import text_problem
from .crypto import Crypto
from .models import Service, isoformat
from .models.services import DEFAULT_API_VERSION, DEFAULT_LOGIN_URL, DEFAULT_SCOPES
from .salesforce.oauth import is_loopback_url

DEFAULTS: dict[str, Any] = {
    "provider": "salesforce",
    "login_url": DEFAULT_LOGIN_URL,
    "api_version": DEFAULT_API_VERSION,
    "scopes": DEFAULT_SCOPES,
    "session_timeout_minutes": 120,
    "use_introspection": False,
    "api_reserve_percent": 10,
}
FIELDS = ("name", "client_id", "client_secret", *DEFAULTS)
# Fields of service_to_dict() that a client may send back unchanged; they are ignored.
READ_ONLY = frozenset({"id", "created_at", "updated_at", "callback_url", "accounts"})
REQUIRED = ("name", "client_id", "client_secret")

_API_VERSION = re.compile(r"^[0-9]{2,3}\.0$")
MAX_LOGIN_URL = 255  # the column's length
_SCOPE = re.compile(r"^[a-z_]+$")
_RANGES = {"session_timeout_minutes": (15, 1440), "api_reserve_percent": (0, 100)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ServiceInvalid(ValueError):
    """The service data has problems; `problems` lists each as "field: message"."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def normalise_login_url(raw: str) -> tuple[str | None, str | None]:
    """(normalised URL, None) or (None, problem) for a Salesforce login URL."""
    value = raw.strip()
    if text_problem(value) or any(c.isspace() or ord(c) < 32 for c in value):
        return None, "must be a URL such as https://login.salesforce.com"
    try:
        # urlsplit raises on a malformed IPv6 host such as "http://[::1"
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        return None, "must be a URL such as https://login.salesforce.com"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not hostname:
        return None, "must be a URL such as https://login.salesforce.com"
    if scheme == "http" and not is_loopback_url(value):
        return None, (
            "must use https (plain http is allowed only for 127.0.0.1, localhost or ::1, "
            "e.g. the simulator)"
        )
    if parts.username or parts.password:
        return None, "must not contain a user name or password"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None, (
            "must be the host only, e.g. https://login.salesforce.com, "
            "https://test.salesforce.com or https://yourdomain.my.salesforce.com"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None, "has an invalid port"
    url = f"{scheme}://{parts.netloc.lower()}"
    if len(url) > MAX_LOGIN_URL:
        return None, f"at most {MAX_LOGIN_URL} characters"
    return url, None


def _text(key: str, value: Any, problems: list[str], max_len: int = 255) -> str | None:
    if not isinstance(value, str):
        problems.append(f"{key}: must be a string")
        return None
    value = value.strip()
    if not value:
        problems.append(f"{key}: required")
        return None
    problem = text_problem(value)
    if problem:
        problems.append(f"{key}: {problem}")
        return None
    if len(value) > max_len:
        problems.append(f"{key}: at most {max_len} characters")
        return None
    return value


def _integer(key: str, value: Any, low: int, high: int, problems: list[str]) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{key}: must be a whole number from {low} to {high}")
        return None
    if not low <= value <= high:
        problems.append(f"{key}: must be from {low} to {high} (got {value})")
        return None
    return value


def _boolean(key: str, value: Any, problems: list[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    problems.append(f"{key}: must be true or false")
    return None


def validate_service(
    session: Session,
    data: Mapping[str, Any],
    *,
    existing: Service | None = None,
) -> dict[str, Any]:
    """Clean values of the fields present in `data`; raise ServiceInvalid listing every problem.

    On create (`existing` is None) the required fields must be present and the others get
    their defaults; on update only the fields given are checked and returned.
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ServiceInvalid(["body: expected an object"])
    for key in data:
        if key not in FIELDS and key not in READ_ONLY:
            problems.append(f"{key}: unknown field")
    values = {key: data[key] for key in FIELDS if key in data}
    if existing is None:
        for key in REQUIRED:
            if key not in values or values[key] in (None, ""):
                problems.append(f"{key}: required")
                values.pop(key, None)
        for key, default in DEFAULTS.items():
            if values.get(key) is None:
                values[key] = default
    elif values.get("client_secret") in (None, ""):
        # Write-only: a blank secret on edit keeps the stored one.
        values.pop("client_secret", None)

    clean: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            problems.append(f"{key}: must not be null")
            continue
        cleaned = _clean_field(session, key, value, problems, existing)
        if cleaned is not None:
            clean[key] = cleaned
    if problems:
        raise ServiceInvalid(problems)
    return clean


def _clean_field(
    session: Session, key: str, value: Any, problems: list[str], existing: Service | None
) -> Any:
    """The clean value of one field, or None after adding its problem to `problems`."""
    if key == "name":
        name = _text(key, value, problems, 100)
        if name is not None:
            clash = session.scalar(
                select(Service.id).where(func.lower(Service.name) == name.lower())
            )
            if clash is not None and (existing is None or clash != existing.id):
                problems.append(f"name: a service named {name!r} already exists")
        return name
    if key == "provider":
        if value == "salesforce":
            return value
        problems.append('provider: only "salesforce" is supported')
        return None
    if key == "client_id":
        client_id = _text(key, value, problems)
        if client_id is not None and re.search(r"\s", client_id):
            problems.append("client_id: must not contain spaces")
            return None
        return client_id
    if key == "client_secret":
        return _text(key, value, problems)
    if key == "login_url":
        if not isinstance(value, str):
            problems.append("login_url: must be a string")
            return None
        url, problem = normalise_login_url(value)
        if problem:
            problems.append(f"login_url: {problem}")
        return url
    if key == "api_version":
        version = value.strip().removeprefix("v") if isinstance(value, str) else None
        if version is None or not _API_VERSION.match(version):
            problems.append('api_version: must look like "62.0"')
            return None
        return version
    if key == "scopes":
        scopes = value.split() if isinstance(value, str) else None
        if not scopes:
            problems.append('scopes: required, e.g. "api refresh_token offline_access"')
        elif not all(_SCOPE.match(s) for s in scopes):
            problems.append("scopes: space-separated scope names such as api refresh_token")
        elif not {"refresh_token", "offline_access"} & set(scopes):
            problems.append(
                "scopes: must include refresh_token (or offline_access) so the access "
                "token can be refreshed"
            )
        else:
            return " ".join(dict.fromkeys(scopes))
        return None
    if key == "use_introspection":
        return _boolean(key, value, problems)
    low, high = _RANGES[key]
    return _integer(key, value, low, high, problems)


def create_service(session: Session, crypto: Crypto, data: Mapping[str, Any]) -> Service:
    """Validate and add a service (the caller commits)."""
    clean = validate_service(session, data)
    secret = clean.pop("client_secret")
    service = Service(**clean, client_secret_enc=crypto.encrypt(secret))
    session.add(service)
    session.flush()
    return service


def update_service(
    session: Session, crypto: Crypto, service: Service, data: Mapping[str, Any]
) -> Service:
    """Validate and apply the given fields; a blank client secret keeps the stored one."""
    clean = validate_service(session, data, existing=service)
    secret = clean.pop("client_secret", None)
    if secret is not None:
        service.client_secret_enc = crypto.encrypt(secret)
    for key, value in clean.items():
        setattr(service, key, value)
    session.flush()
    return service


def service_to_dict(service: Service) -> dict[str, Any]:
    """The service as the API shows it: never the client secret."""
    return {
        "id": service.id,
        "name": service.name,
        "provider": service.provider,
        "client_id": service.client_id,
        "login_url": service.login_url,
        "api_version": service.api_version,
        "scopes": service.scopes,
        "session_timeout_minutes": service.session_timeout_minutes,
        "use_introspection": service.use_introspection,
        "api_reserve_percent": service.api_reserve_percent,
        "created_at": isoformat(service.created_at),
        "updated_at": isoformat(service.updated_at),
    }
