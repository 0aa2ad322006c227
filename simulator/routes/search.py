"""SOSL over REST: ``GET /services/data/vXX.X/search?q=FIND {...} RETURNING ...``."""

from __future__ import annotations

from flask import Blueprint, Response, request

from simulator import sosl
from simulator.errors import SfError
from simulator.routes.plumbing import authenticate_rest, json_response, sim_state

search_bp = Blueprint("search", __name__)
search_bp.before_request(authenticate_rest)


@search_bp.get("/services/data/v<version>/search")
@search_bp.get("/services/data/v<version>/search/")
def search(version: str) -> Response:
    text = request.args.get("q")
    if not text:
        raise SfError(400, "MALFORMED_SEARCH", "A search string must be provided with the q param")
    state = sim_state()
    with state.lock:
        return json_response(sosl.search(state, text, version))
