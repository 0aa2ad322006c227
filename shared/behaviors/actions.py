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


def outbound_request(
    params: dict[str, Any], client: OutboundClient, *, sends_once: bool = False
) -> dict[str, Any]:
    """http.request with `account: none`: any URL the SSRF guard allows, no credentials.

    With `sends_once` (a POST) a request that went out unanswered is not sent again.
    """
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
            resend_unanswered=not sends_once,
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
    """By Id, or by `external_id_field` + `external_id` (exactly one form, checked again here
    because the values may come from templates)."""
    fields = params.get("fields")
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",") if f.strip()]
    sobject = _text(params, "sobject")
    if params.get("record_id") is not None:
        if params.get("external_id_field") is not None or params.get("external_id") is not None:
            raise ActionError(
                "invalid_parameter", "give either record_id or external_id_field and external_id"
            )
        return dict(client.get(sobject, _text(params, "record_id"), fields=fields or None))
    return dict(
        client.get_by_external_id(
            sobject,
            _text(params, "external_id_field"),
            _text(params, "external_id"),
            fields=fields or None,
        )
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


COMPOSITE_MAX = 200  # records per sObject Collections call


def composite_creates(params: dict[str, Any]) -> bool:
    """Whether a rendered salesforce.composite step creates records (sending it twice could
    create them twice), as salesforce.create does."""
    return str(params.get("operation") or "").strip().lower() == "create"


def salesforce_composite(params: dict[str, Any], client: SalesforceClient) -> list[dict[str, Any]]:
    """One sObject Collections call; `[{id, success, errors}]` per record, in order.

    Salesforce answers 200 with per-record results even when records fail, so a failing record
    does not fail the step: with `all_or_none` every record then carries an error (the others
    `ALL_OR_NONE_OPERATION_ROLLED_BACK`), without it the valid records are saved.
    """
    operation = _text(params, "operation").strip().lower()
    if operation not in ("create", "update", "delete"):
        raise ActionError(
            "invalid_parameter", f"operation: expected create, update or delete, got {operation!r}"
        )
    all_or_none = params.get("all_or_none")
    if all_or_none is not None and not isinstance(all_or_none, bool):
        raise ActionError(
            "invalid_parameter", f"all_or_none: expected true or false, got {all_or_none!r}"
        )
    key = "ids" if operation == "delete" else "records"
    items = params.get(key)
    if not isinstance(items, list) or not items:
        raise ActionError("invalid_parameter", f"{key}: expected a non-empty list, got {items!r}")
    if len(items) > COMPOSITE_MAX:
        raise ActionError("invalid_parameter", f"{key}: at most {COMPOSITE_MAX}, got {len(items)}")
    if operation == "delete":
        if not all(isinstance(i, str) and i.strip() for i in items):
            raise ActionError("invalid_parameter", "ids: expected a list of record Ids")
        return client.composite_delete(items, all_or_none=bool(all_or_none))
    sobject = params.get("sobject")
    records: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ActionError("invalid_parameter", f"records[{index}]: expected an object")
        record = dict(item)
        attributes = record.get("attributes")
        if not (isinstance(attributes, dict) and attributes.get("type")):
            if sobject is None or str(sobject).strip() == "":
                raise ActionError(
                    "invalid_parameter", f"records[{index}]: no attributes.type and no sobject"
                )
            record["attributes"] = {**(attributes or {}), "type": str(sobject)}
        if operation == "update":
            # Salesforce reads field names case-insensitively; its examples spell it "id"
            for name in [k for k in record if k != "id" and str(k).lower() == "id"]:
                record["id"] = record.pop(name)
        records.append(record)
    if operation == "update":
        return client.composite_update(records, all_or_none=bool(all_or_none))
    return client.composite(records, all_or_none=bool(all_or_none))


CLIENT_ACTIONS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "http.request": http_request,
    "salesforce.query": salesforce_query,
    "salesforce.get": salesforce_get,
    "salesforce.create": salesforce_create,
    "salesforce.update": salesforce_update,
    "salesforce.upsert": salesforce_upsert,
    "salesforce.delete": salesforce_delete,
    "salesforce.composite": salesforce_composite,
}
