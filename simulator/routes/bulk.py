"""Bulk API 2.0 query jobs over HTTP (see `simulator.bulk`)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from simulator import bulk
from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, json_response, sim_state

bulk_bp = Blueprint("bulk", __name__)
bulk_bp.before_request(authenticate_rest)


@bulk_bp.post("/services/data/v<version>/jobs/query")
def create_job(version: str) -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "expected a JSON object")
    return json_response(bulk.create_job(sim_state(), body, version))


@bulk_bp.get("/services/data/v<version>/jobs/query/<job_id>")
def job_info(version: str, job_id: str) -> Response:
    return json_response(bulk.job_info(sim_state(), job_id))


@bulk_bp.get("/services/data/v<version>/jobs/query/<job_id>/results")
def job_results(version: str, job_id: str) -> Response:
    max_records = request.args.get("maxRecords", type=int)
    text, locator, count = bulk.results(
        sim_state(), job_id, request.args.get("locator"), max_records
    )
    resp = Response(text, mimetype="text/csv")
    resp.headers["Sforce-Locator"] = locator
    resp.headers["Sforce-NumberOfRecords"] = str(count)
    return resp
