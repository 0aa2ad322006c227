"""`http.request` with `account: none` in a real worker: guard, no credentials, run records."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared.models import Account, HttpExchange
from tests.shared.outbound.servers import Receiver

from .runs_support import (  # noqa: F401 - fixtures
    FAST_ENV,
    no_default_worker_fixture,
    save,
    trigger,
    wait_status,
)

BEHAVIOR = """
name: notify-chat
account: acme-prod
inputs:
  url: {type: string, required: true}
  token: {type: string}
steps:
  - id: cases
    action: salesforce.query
    soql: SELECT Id FROM Case
  - id: post
    action: http.request
    account: none
    method: POST
    url: "{{ inputs.url }}"
    headers:
      Authorization: "Bearer {{ inputs.token }}"
      X-Team: support
    json: {text: "{{ steps.cases.totalSize }} cases"}
result: "{{ steps.post }}"
"""


@pytest.fixture
def allowed():
    with Receiver("127.0.0.2") as server:
        yield server


@pytest.fixture
def forbidden():
    with Receiver("127.0.0.1") as server:
        yield server


@pytest.fixture
def outbound_worker(no_default_worker, worker_factory):
    return worker_factory(FORCEBOT_HTTP_ALLOW_HOSTS="127.0.0.2", **FAST_ENV)


def test_account_none_reaches_an_allowed_host_without_the_accounts_token(
    runtime, sim, linked_account, outbound_worker, allowed
):
    account_id = linked_account()
    with runtime.Session() as session:
        token = runtime.crypto.decrypt(session.get(Account, account_id).access_token_enc)
    save(runtime, BEHAVIOR)
    run_id = trigger(runtime, "notify-chat", {"url": allowed.url + "/hook", "token": token})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "succeeded", data
    (request,) = allowed.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert "authorization" not in headers  # the template tried to add the account's token
    assert headers["x-team"] == "support"
    assert json.loads(request["body"]) == {"text": "0 cases"}
    assert data["result"]["status"] == 200 and data["result"]["body"] == {"ok": True}
    with runtime.Session() as session:
        rows = session.scalars(select(HttpExchange).where(HttpExchange.run_id == run_id)).all()
        stored = str([(x.url, x.request_headers, x.request_body, x.response_body) for x in rows])
    assert any(x.url == allowed.url + "/hook" and x.status == 200 for x in rows)
    assert token not in stored, stored
    assert token not in str({k: v for k, v in data.items() if k != "payload"})


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("{forbidden}/x", "loopback"),
        ("http://0x7f000001:{port}/x", "loopback"),
        ("http://localhost:{port}/x", "loopback"),
        ("http://[::1]:{port}/x", "loopback"),
    ],
)
def test_account_none_to_a_forbidden_loopback_fails_the_run(
    runtime, sim, linked_account, outbound_worker, forbidden, url, rule
):
    linked_account()
    save(runtime, BEHAVIOR)
    target = url.format(forbidden=forbidden.url, port=forbidden.port)
    run_id = trigger(runtime, "notify-chat", {"url": target})
    data = wait_status(runtime, run_id, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "failed"
    assert data["error"]["code"] == "outbound_refused"
    assert f"rule {rule}" in data["error"]["message"]
    assert data["attempts"] == 1  # a refusal is not retried
    assert forbidden.connections == 0


PY_MODULE = "fb_test_outbound_behaviors"
PY_SOURCE = """
from shared.behaviors.registry import behavior


@behavior("python-notify", inputs={"url": {"type": "string", "required": True},
                                   "token": {"type": "string"}})
def notify(ctx):
    response = ctx.http.request(
        "POST", ctx.inputs["url"], json={"hello": "world"},
        headers={"Authorization": "Bearer " + (ctx.inputs.get("token") or ""), "X-A": "1"},
    )
    return {"status": response.status_code}
"""


@pytest.fixture
def py_module(tmp_path):
    import importlib
    import sys

    from shared.behaviors.registry import unregister

    (tmp_path / f"{PY_MODULE}.py").write_text(PY_SOURCE)
    sys.path.insert(0, str(tmp_path))
    importlib.import_module(PY_MODULE)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop(PY_MODULE, None)
    unregister("python-notify")


def test_ctx_http_in_a_python_behavior(
    runtime, sim, linked_account, no_default_worker, worker_factory, py_module, allowed, forbidden
):
    from tests.conftest import ROOT

    account_id = linked_account()
    with runtime.Session() as session:
        token = runtime.crypto.decrypt(session.get(Account, account_id).refresh_token_enc)
    worker_factory(
        FORCEBOT_HTTP_ALLOW_HOSTS="127.0.0.2",
        FORCEBOT_BEHAVIOR_MODULES=PY_MODULE,
        PYTHONPATH=f"{ROOT}:{py_module}",
        **FAST_ENV,
    )
    ok = trigger(runtime, "python-notify", {"url": allowed.url, "token": token})
    data = wait_status(runtime, ok, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "succeeded" and data["result"] == {"status": 200}, data
    headers = {k.lower() for k in allowed.requests[0]["headers"]}
    assert "authorization" not in headers and "x-a" in headers  # the refresh token is stripped
    refused = trigger(runtime, "python-notify", {"url": forbidden.url})
    data = wait_status(runtime, refused, ("succeeded", "failed"), timeout=60)
    assert data["status"] == "failed"
    assert data["error"]["code"] == "outbound_refused"
    assert "refused by rule loopback" in data["error"]["message"]
    assert forbidden.connections == 0
