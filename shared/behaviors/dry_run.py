"""Dry runs: a behavior runs for real except that its writes to Salesforce are not sent.

A run whose trigger is `dry_run` gets Salesforce clients on a `DryRunSession`: reads (GET and
HEAD) and the OAuth token calls go out as usual, so queries and gets return real data; any
other request to the REST API (`/services/data/...`: create, update, upsert, delete, a POST
`http.request`) is prepared exactly as it would be sent — URL, headers, body — and recorded as
the step's HTTP exchange, but answered locally instead (`X-Forcebot-Dry-Run: not sent`):
201 `{"id": DRY_RUN_ID, "success": true, "errors": [], "dry_run": true}` for a POST and 204 for
the others, so later steps can still render; an sObject Collections call (`composite/sobjects`)
gets 200 with one such result per record, in order (the record's own id for an update or a
delete). What is guaranteed: no such request leaves the
process. What is not: requests that do not go through the account's Salesforce client (an
`http.request` with `account: none`) are outside this session.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

DRY_RUN_TRIGGER = "dry_run"
DRY_RUN_ID = "000DRYRUN000000AAA"
NOT_SENT = "not sent"
READS = frozenset({"GET", "HEAD"})


class DryRunSession(requests.Session):
    """A requests Session that answers REST writes itself instead of sending them."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        if method in READS or not path.startswith("/services/data/"):
            return super().send(request, **kwargs)
        response = requests.Response()
        response.request = request
        response.url = request.url or ""
        response.headers["X-Forcebot-Dry-Run"] = NOT_SENT
        if path.endswith("/composite/sobjects"):
            response.status_code = 200
            response.headers["Content-Type"] = "application/json"
            response._content = json.dumps(_collection_results(request, method)).encode()
        elif method == "POST":
            response.status_code = 201
            response.headers["Content-Type"] = "application/json"
            body = {"id": DRY_RUN_ID, "success": True, "errors": [], "dry_run": True}
            response._content = json.dumps(body).encode()
        else:
            response.status_code = 204
            response._content = b""
        response.reason = "Dry run: not sent"
        return response


def _collection_results(request: requests.PreparedRequest, method: str) -> list[dict[str, Any]]:
    """One not-sent success per record of a composite/sobjects call, in order."""
    if method == "DELETE":
        query = parse_qs(urlsplit(request.url or "").query)
        ids: list[Any] = [i for i in ",".join(query.get("ids", [])).split(",") if i]
    else:
        try:
            records = json.loads(request.body or b"{}").get("records") or []
        except (ValueError, AttributeError):
            records = []
        ids = [DRY_RUN_ID if method == "POST" else (r or {}).get("id") for r in records]
    return [{"id": i, "success": True, "errors": [], "dry_run": True} for i in ids]
