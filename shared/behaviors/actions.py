"""One function per Salesforce-facing action; each takes rendered parameters and a client.

`set`, `foreach` and `fail` change the engine's own state and live in `engine.py`.
Outputs are what templates see as `steps.<id>` and must be JSON-serializable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from shared.outbound import OutboundClient
    from shared.salesforce.client import SalesforceClient

NO_ACCOUNT = "none"  # `account: none` on http.request: no Salesforce account, any allowed URL

MAX_QUERY_ROWS = 50_000  # rows kept by salesforce.query when the step sets no `limit:`


class ActionError(Exception):
    """A step's parameters are unusable at run time (after rendering); not retryable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if value is None or isinstance(value, dict | list) or str(value).strip() == "":
        raise ActionError("invalid_parameter", f"{key}: expected a non-empty value, got {value!r}")
    return str(value)


def _mapping(params: dict[str, Any], key: str, default: Any = None) -> dict[str, Any]:
    value = params.get(key, default)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ActionError("invalid_parameter", f"{key}: expected an object, got {value!r}")
    return value


def is_no_account(account: Any) -> bool:
    """True for `account: none` (any case); a YAML null means "the behavior's account"."""
    return isinstance(account, str) and account.strip().lower() == NO_ACCOUNT


def _request_parts(params: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any], dict]:
    method = str(params.get("method") or "GET").upper()
    headers = {str(k): str(v) for k, v in _mapping(params, "headers").items()}
    query = _mapping(params, "params")
    kwargs: dict[str, Any] = {}
    if "json" in params:
        kwargs["json"] = params["json"]
    elif params.get("form") is not None:
        kwargs["data"] = {str(k): _form_value(v) for k, v in _mapping(params, "form").items()}
    elif params.get("body") is not None:
        body = params["body"]
        kwargs["data"] = body if isinstance(body, str) else json.dumps(body)
    return method, headers, query, kwargs


def _form_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def http_request(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    """Cerb's Execute HTTP Request: through the client, so the token goes to the org only."""
    method, headers, query, kwargs = _request_parts(params)
    response = client.request(
        method,
        _text(params, "url"),
        params=query or None,
        headers=headers or None,
        raise_for_status=False,
        **kwargs,
    )
    return _output(response)


def outbound_request(params: dict[str, Any], client: OutboundClient) -> dict[str, Any]:
    """http.request with `account: none`: any URL the SSRF guard allows, no credentials."""
    from shared.outbound import Refused

    method, headers, query, kwargs = _request_parts(params)
    timeout = params.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 120
    ):
        raise ActionError(
            "invalid_parameter", f"timeout: expected 0 < seconds <= 120, got {timeout!r}"
        )
    try:
        response = client.request(
            method,
            _text(params, "url"),
            params=query or None,
            headers=headers,
            timeout=timeout,
            follow_redirects=bool(params.get("follow_redirects", False)),
            **kwargs,
        )
    except Refused as exc:
        raise ActionError("outbound_refused", exc.message) from None
    return _output(response)


class GuardedHttp:
    """`ctx.http` in Python behaviors: the outbound client; a refusal fails the step with
    code `outbound_refused`, as it does for `http.request` with `account: none`."""

    def __init__(self, client: OutboundClient) -> None:
        self._client = client

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """`OutboundClient.request`: params, headers, json, data, timeout, follow_redirects."""
        from shared.outbound import Refused

        try:
            return self._client.request(method, url, **kwargs)
        except Refused as exc:
            raise ActionError("outbound_refused", exc.message) from None


def _output(response: requests.Response) -> dict[str, Any]:
    content_type = response.headers.get("Content-Type", "")
    body_out: Any = response.text
    if "json" in content_type.lower() and response.content:
        try:
            body_out = response.json()
        except ValueError:
            pass
    return {"status": response.status_code, "headers": dict(response.headers), "body": body_out}


def salesforce_query(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    limit = params.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ActionError("invalid_parameter", f"limit: expected a number >= 1, got {limit!r}")
    return dict(
        client.query_result(
            _text(params, "soql"),
            include_deleted=bool(params.get("include_deleted")),
            limit=min(limit or MAX_QUERY_ROWS, MAX_QUERY_ROWS),
        )
    )


def salesforce_get(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    fields = params.get("fields")
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    return dict(
        client.get(_text(params, "sobject"), _text(params, "record_id"), fields=fields or None)
    )


def salesforce_create(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    return dict(client.create(_text(params, "sobject"), _mapping(params, "fields")))


def salesforce_update(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    record_id = _text(params, "record_id")
    client.update(_text(params, "sobject"), record_id, _mapping(params, "fields"))
    return {"id": record_id, "success": True}


def salesforce_upsert(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    return dict(
        client.upsert(
            _text(params, "sobject"),
            _text(params, "external_id_field"),
            _text(params, "external_id"),
            _mapping(params, "fields"),
        )
    )


def salesforce_delete(params: dict[str, Any], client: SalesforceClient) -> dict[str, Any]:
    record_id = _text(params, "record_id")
    client.delete(_text(params, "sobject"), record_id)
    return {"id": record_id, "success": True}


CLIENT_ACTIONS: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "http.request": http_request,
    "salesforce.query": salesforce_query,
    "salesforce.get": salesforce_get,
    "salesforce.create": salesforce_create,
    "salesforce.update": salesforce_update,
    "salesforce.upsert": salesforce_upsert,
    "salesforce.delete": salesforce_delete,
}
