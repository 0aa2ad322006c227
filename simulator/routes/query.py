"""SOQL over REST: query, queryAll, query locators (nextRecordsUrl) and /limits."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, json_response, sim_state

# Every key of Salesforce's /limits (API 62.0), with an Enterprise org's maxima; only
# DailyApiRequests moves (with the simulator's API usage), the rest stay full.
LIMITS: list[tuple[str, int]] = [
    ("ActiveScratchOrgs", 3), ("AnalyticsExternalDataSizeMB", 40960),
    ("ConcurrentAsyncGetReportInstances", 200), ("ConcurrentEinsteinDataInsightsStoryCreation", 5),
    ("ConcurrentEinsteinDiscoveryStoryCreation", 2), ("ConcurrentSyncReportRuns", 20),
    ("DailyAnalyticsDataflowJobExecutions", 60), ("DailyAnalyticsUploadedFilesSizeMB", 51200),
    ("DailyApiRequests", 100000), ("DailyAsyncApexExecutions", 250000),
    ("DailyAsyncApexTests", 500), ("DailyBulkApiBatches", 15000),
    ("DailyBulkV2QueryFileStorageMB", 976562), ("DailyBulkV2QueryJobs", 10000),
    ("DailyDeliveredPlatformEvents", 10000), ("DailyDurableGenericStreamingApiEvents", 10000),
    ("DailyDurableStreamingApiEvents", 10000), ("DailyEinsteinDataInsightsStoryCreation", 1000),
    ("DailyEinsteinDiscoveryPredictAPICalls", 50000),
    ("DailyEinsteinDiscoveryPredictionsByCDC", 500000),
    ("DailyEinsteinDiscoveryStoryCreation", 100), ("DailyFunctionsApiCallLimit", 235000),
    ("DailyGenericStreamingApiEvents", 10000), ("DailyScratchOrgs", 6),
    ("DailyStandardVolumePlatformEvents", 10000), ("DailyStreamingApiEvents", 10000),
    ("DailyWorkflowEmails", 2000000), ("DataStorageMB", 5),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 20), ("HourlyAsyncReportRuns", 1200), ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5000), ("HourlyDashboardStatuses", 999999999),
    ("HourlyLongTermIdMapping", 100000), ("HourlyManagedContentPublicRequests", 50000),
    ("HourlyODataCallout", 10000), ("HourlyPublishedPlatformEvents", 50000),
    ("HourlyPublishedStandardVolumePlatformEvents", 100000), ("HourlyShortTermIdMapping", 100000),
    ("HourlySyncReportRuns", 500), ("HourlyTimeBasedWorkflow", 1000), ("MassEmail", 5000),
    ("MonthlyEinsteinDiscoveryStoryCreation", 500),
    ("MonthlyPlatformEventsUsageEntitlement", 300000), ("Package2VersionCreates", 6),
    ("Package2VersionCreatesWithoutValidation", 500), ("PermissionSets", 1500),
    ("PrivateConnectOutboundCalloutHourlyLimitMB", 0), ("PublishCallbackUsageInApex", 5000000),
    ("SingleEmail", 5000), ("StreamingApiConcurrentClients", 20),
]  # fmt: skip

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
    body: dict[str, Any] = {name: {"Max": value, "Remaining": value} for name, value in LIMITS}
    body["DailyApiRequests"] = {"Max": api_max, "Remaining": remaining}
    body["PermissionSets"]["CreateCustom"] = {"Max": 1000, "Remaining": 1000}
    return json_response(body)
