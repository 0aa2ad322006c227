"""SOQL over REST: query, queryAll, query locators (nextRecordsUrl) and /limits."""

from __future__ import annotations

from flask import Blueprint, Response, request

from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, json_response, sim_state

query_bp = Blueprint("query", __name__)
query_bp.before_request(authenticate_rest)


def _batch_size() -> int:
    header = request.headers.get("Sforce-Query-Options", "")
    default = int(sim_state().settings["default_batch_size"])
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                return max(200, min(2000, int(value.strip())))
            except ValueError:
                return default
    return default


def _run_query(version: str, include_deleted: bool) -> Response:
    text = request.args.get("q")
    if text is None:
        raise SfError(400, "MALFORMED_QUERY", "A query string must be provided with the q param")
    return json_response(sim_state().run_query(text, include_deleted, _batch_size(), version))


@query_bp.get("/services/data/v<version>/query")
@query_bp.get("/services/data/v<version>/query/")
def query(version: str) -> Response:
    return _run_query(version, include_deleted=False)


@query_bp.get("/services/data/v<version>/queryAll")
@query_bp.get("/services/data/v<version>/queryAll/")
def query_all(version: str) -> Response:
    return _run_query(version, include_deleted=True)


@query_bp.get("/services/data/v<version>/query/<cursor>")
@query_bp.get("/services/data/v<version>/queryAll/<cursor>")
def query_more(version: str, cursor: str) -> Response:
    locator, _, offset = cursor.rpartition("-")
    if not locator or not offset.isdigit():
        raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return json_response(sim_state().query_more(locator, int(offset), version))


@query_bp.get("/services/data/v<version>/limits")
@query_bp.get("/services/data/v<version>/limits/")
def limits(version: str) -> Response:
    state = sim_state()
    with state.lock:
        api_max = int(state.settings["api_max"])
        remaining = max(0, api_max - state.api_usage)
    return json_response(
        {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": api_max, "Remaining": remaining},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "HourlyTimeBasedWorkflow": {"Max": 1000, "Remaining": 1000},
        }
    )
