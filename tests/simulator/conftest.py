"""Fixtures for the simulator's own tests: one real two-host server per session, reset per test."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simhelpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, OAuthHelper

from simulator.server import SimulatorServer


@pytest.fixture(scope="session")
def sim():
    with SimulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_state(sim):
    sim.control.reset()
    sim.control.register_app(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], auto_approve=True)
    yield


@pytest.fixture
def control(sim):
    return sim.control


@pytest.fixture
def oauth(sim):
    return OAuthHelper(sim)


@pytest.fixture
def session(oauth):
    """A fresh token response (with a refresh token)."""
    return oauth.login()


@pytest.fixture
def rest(oauth, session):
    """``rest(method, path, **kw)`` on the instance host with the session's token."""

    def call(method: str, path: str, **kw: Any) -> requests.Response:
        return oauth.rest(method, path, session["access_token"], **kw)

    return call
