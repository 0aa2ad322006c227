"""A small Python client for the simulator's control API (``/_sim/...`` on the login host)."""

from __future__ import annotations

from typing import Any

import requests


class SimulatorControlError(RuntimeError):
    pass


class SimulatorControl:
    """``SimulatorControl("http://127.0.0.1:18443")`` — every method is one control route."""

    def __init__(self, base_url: str, timeout: float = 10.0, verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify = verify  # the CA file of a --tls simulator
        self.http = requests.Session()

    def _call(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        resp = self.http.request(
            method,
            f"{self.base_url}/_sim{path}",
            json=json,
            params=params,
            timeout=self.timeout,
            # Per request: a session-level verify loses to REQUESTS_CA_BUNDLE in requests.
            verify=self.verify,
        )
        if resp.status_code >= 400:
            raise SimulatorControlError(f"{method} /_sim{path}: {resp.status_code} {resp.text}")
        return resp.json()

    # ---- general
    def info(self) -> dict[str, Any]:
        return self._call("GET", "/info")

    def reset(self) -> None:
        self._call("POST", "/reset")

    # ---- apps and users
    def register_app(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        name: str = "Forcebot",
        auto_approve: bool = False,
        scopes: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": client_id,
            "client_secret": client_secret,
            "name": name,
            "redirect_uris": list(redirect_uris),
            "auto_approve": auto_approve,
        }
        if scopes is not None:
            body["scopes"] = scopes
        return self._call("POST", "/apps", json=body)

    def update_app(self, client_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/apps/{client_id}", json=fields)

    def apps(self) -> list[dict[str, Any]]:
        return self._call("GET", "/apps")

    def add_user(
        self, username: str, first_name: str = "Sim", last_name: str = "User"
    ) -> dict[str, Any]:
        body = {"username": username, "first_name": first_name, "last_name": last_name}
        return self._call("POST", "/users", json=body)

    # ---- sessions and tokens
    def expire_sessions(self) -> int:
        return self._call("POST", "/sessions/expire")["expired"]

    def revoke_refresh_tokens(self, username: str | None = None) -> int:
        body = {"username": username} if username else {}
        return self._call("POST", "/refresh_tokens/revoke", json=body)["revoked"]

    def set_rotation(self, enabled: bool) -> dict[str, Any]:
        return self._call("POST", "/rotation", json={"enabled": enabled})

    def set_session_timeout(self, seconds: int) -> dict[str, Any]:
        return self._call("POST", "/session_timeout", json={"seconds": seconds})

    def settings(self) -> dict[str, Any]:
        return self._call("GET", "/settings")

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        return self._call("POST", "/settings", json=changes)

    def advance_clock(self, seconds: float) -> str:
        return self._call("POST", "/clock", json={"advance_seconds": seconds})["now"]

    # ---- limits and faults
    def set_limits(self, max: int | None = None, usage: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if max is not None:
            body["max"] = max
        if usage is not None:
            body["usage"] = usage
        return self._call("POST", "/limits", json=body)

    def add_fault(
        self,
        prefix: str,
        count: int = 1,
        status: int | None = 503,
        error_code: str = "SERVER_UNAVAILABLE",
        message: str = "Service temporarily unavailable",
        delay_seconds: float = 0.0,
        retry_after: str | int | None = None,
        html: bool = False,
        host: str | None = None,
        after: int = 0,
    ) -> dict[str, Any]:
        """Fail (or with status=None only delay) `count` requests whose path starts with
        `prefix`, once `after` matching requests have gone through unharmed."""
        body = {
            "prefix": prefix,
            "count": count,
            "status": status,
            "error_code": error_code,
            "message": message,
            "delay_seconds": delay_seconds,
            "retry_after": retry_after,
            "html": html,
            "host": host,
            "after": after,
        }
        return self._call("POST", "/faults", json=body)

    def fail_query_page(
        self,
        n: int,
        status: int | None = 503,
        delay_seconds: float = 0.0,
        version: str = "62.0",
        count: int = 1,
    ) -> dict[str, Any]:
        """Fault the `n`-th queryMore page (1 = the first nextRecordsUrl followed): a 503 by
        default, or with status=None a stall of `delay_seconds` before it is served."""
        if n < 1:
            raise ValueError("n counts queryMore pages from 1")
        return self.add_fault(
            f"/services/data/v{version}/query/",
            count=count,
            status=status,
            delay_seconds=delay_seconds,
            after=n - 1,
        )

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    # ---- schema and records
    def define_field(self, sobject: str, name: str, type: str = "string", **spec: Any) -> Any:
        """Define a custom field (``external_id=True``, ``length=``, ``picklist_values=``...)."""
        body = {"name": name, "type": type, **spec}
        return self._call("POST", f"/objects/{sobject}/fields", json=body)

    def seed(
        self,
        sobject: str,
        count: int,
        per_timestamp: int = 1,
        fields: dict[str, Any] | None = None,
        start: str | None = None,
    ) -> list[str]:
        body: dict[str, Any] = {"count": count, "per_timestamp": per_timestamp}
        if fields:
            body["fields"] = fields
        if start:
            body["start"] = start
        return self._call("POST", f"/records/{sobject}/seed", json=body)["ids"]

    def create_record(self, sobject: str, fields: dict[str, Any]) -> str:
        return self._call("POST", f"/records/{sobject}", json=fields)["id"]

    def modify_records(
        self,
        sobject: str,
        ids: list[str],
        fields: dict[str, Any],
        system_modstamp: str | None = None,
    ) -> int:
        body: dict[str, Any] = {"ids": list(ids), "fields": fields}
        if system_modstamp:
            body["system_modstamp"] = system_modstamp
        return self._call("POST", f"/records/{sobject}/modify", json=body)["modified"]

    def delete_records(
        self, sobject: str, ids: list[str], system_modstamp: str | None = None
    ) -> int:
        body: dict[str, Any] = {"ids": list(ids)}
        if system_modstamp:
            body["system_modstamp"] = system_modstamp
        return self._call("POST", f"/records/{sobject}/delete", json=body)["deleted"]

    def records(self, sobject: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        params = {"include_deleted": "1" if include_deleted else "0"}
        return self._call("GET", f"/records/{sobject}", params=params)["records"]

    # ---- observation
    def log(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/log", params={"limit": limit} if limit else None)

    def clear_log(self) -> None:
        self._call("DELETE", "/log")

    def counters(self) -> dict[str, int]:
        return self._call("GET", "/counters")

    def reset_counters(self) -> dict[str, int]:
        return self._call("POST", "/counters/reset")
