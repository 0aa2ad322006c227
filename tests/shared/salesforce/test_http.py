"""`send`: bookkeeping never replaces a response, except the signal that the work is not ours."""

from __future__ import annotations

import pytest
import requests

from shared.behaviors.engine import ClaimLost
from shared.salesforce.http import send


def _failing(exc: Exception):
    def on_exchange(summary):
        raise exc

    return on_exchange


def test_a_failing_recorder_does_not_replace_the_response(sim):
    url = sim.instance_url + "/services/data/"  # needs no token
    response = send(
        requests.Session(), "GET", url, timeout=10, on_exchange=_failing(RuntimeError("db"))
    )
    assert response.status_code == 200


def test_a_lost_claim_stops_the_caller(sim):
    """A worker judged dead stops after the request in flight instead of going on writing."""
    url = sim.instance_url + "/services/data/"
    with pytest.raises(ClaimLost):
        send(requests.Session(), "GET", url, timeout=10, on_exchange=_failing(ClaimLost("x")))
