"""/api/v1/webhooks: secret once and encrypted, every problem listed, deliveries, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shared.models import Behavior, Webhook, WebhookDelivery

FUZZ = hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GOOD = {"url": "https://hooks.example.com/in", "events": ["run.failed", "account.linked"]}


def test_create_shows_the_secret_once_and_stores_it_encrypted(api, runtime):
    response = api.post("/webhooks", json=GOOD)
    assert response.status_code == 201
    created = response.get_json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    shown = api.get(f"/webhooks/{created['id']}").get_json()
    listed = api.get("/webhooks").get_json()
    assert "secret" not in shown and secret not in json.dumps(listed)
    assert shown["events"] == ["account.linked", "run.failed"] and shown["enabled"] is True
    with runtime.Session() as session:
        stored = session.get(Webhook, created["id"]).secret_enc
    assert secret not in stored and runtime.crypto.decrypt(stored) == secret


def test_every_problem_is_listed_and_nothing_saved(api, runtime):
    response = api.post(
        "/webhooks",
        json={"url": "ftp://x", "events": ["run.exploded"], "enabled": "maybe", "extra": 1},
    )
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert [d.split(":")[0] for d in details] == ["url", "events[0]", "enabled", "extra"]
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_urls_must_be_https_or_loopback_and_not_private(api):
    for url, ok in [
        ("http://127.0.0.1:9000/hook", True),
        ("http://localhost:9000/hook", True),
        ("https://hooks.example.com/x", True),
        ("http://hooks.example.com/x", False),
        ("https://10.0.0.1/x", False),
        ("https://169.254.169.254/latest", False),
        ("https://[::ffff:192.168.1.1]/x", False),
        ("https://0x0a000001/x", False),
        ("https://host:notaport/x", False),
        ("https://[::1]:8443/x", True),
        ("https://93.184.216.34/x", False),  # an IP address only for loopback
        ("http://127.1/x", False),  # a loopback address is written 127.x.x.x
        ("https://user:pw@hooks.example.com/x", False),
        ("https://hooks.example.com:0/x", False),
        (" https://hooks.example.com/x", False),
    ]:
        response = api.post("/webhooks", json={"url": url, "events": ["run.failed"]})
        assert (response.status_code == 201) is ok, (url, response.get_json())


def test_patch_delete_test_deliveries_and_redeliver(api, runtime):
    webhook_id = api.post("/webhooks", json=GOOD).get_json()["id"]
    patched = api.patch(
        f"/webhooks/{webhook_id}", json={"enabled": False, "events": ["run.failed"]}
    )
    assert patched.status_code == 200 and patched.get_json()["enabled"] is False
    assert api.patch(f"/webhooks/{webhook_id}", json={"url": None}).status_code == 422
    ping = api.post(f"/webhooks/{webhook_id}/test")
    assert ping.status_code == 202 and ping.get_json()["event"]["type"] == "ping"
    again = api.post(f"/webhooks/{webhook_id}/deliveries/{ping.get_json()['id']}/redeliver")
    assert again.status_code == 202
    listed = api.get(f"/webhooks/{webhook_id}/deliveries").get_json()["deliveries"]
    assert [d["id"] for d in listed] == [again.get_json()["id"], ping.get_json()["id"]]
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in listed)
    assert api.post(f"/webhooks/{webhook_id}/deliveries/999/redeliver").status_code == 404
    assert api.delete(f"/webhooks/{webhook_id}").status_code == 200
    assert api.get(f"/webhooks/{webhook_id}").status_code == 404
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_routes_are_in_the_openapi_document(api):
    spec = api.get("/openapi.json").get_json()
    assert {"post", "get"} <= set(spec["paths"]["/webhooks"])
    assert "post" in spec["paths"]["/webhooks/{webhook_id}/test"]
    schemas = spec["components"]["schemas"]
    assert {"url", "events", "enabled"} <= set(schemas["WebhookIn"]["properties"])
    assert "secret" in schemas["WebhookCreated"]["properties"]
    assert "secret" not in schemas["WebhookOut"]["properties"]


# ------------------------------------------------------------------ http.request definitions

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
HTTP_KEYS = ["url", "method", "headers", "params", "json", "body", "form", "timeout",
             "follow_redirects", "account"]  # fmt: skip


def test_fuzzed_http_request_definitions_are_422_never_500(api, runtime):
    @FUZZ
    @given(step=st.dictionaries(st.sampled_from(HTTP_KEYS), json_values, max_size=6))
    def check(step: dict[str, Any]) -> None:
        definition = {
            "name": "fuzz-http",
            "steps": [{"id": "s", "action": "http.request", **step}],
        }
        with runtime.Session() as session:
            before = session.scalar(select(func.count()).select_from(Behavior))
        response = api.post("/behaviors", json=definition)
        text = response.get_data(as_text=True)
        assert response.status_code in (201, 409, 422), text[:400]
        if response.status_code == 422:
            assert response.get_json()["error"]["details"], text[:400]
            with runtime.Session() as session:
                assert session.scalar(select(func.count()).select_from(Behavior)) == before
        if response.status_code == 201:
            assert api.delete("/behaviors/fuzz-http").status_code in (200, 204)

    check()


def test_fuzzed_webhook_bodies_are_4xx_never_500(api, runtime):
    @FUZZ
    @given(
        body=st.dictionaries(
            st.sampled_from(["url", "events", "enabled", "description", "secret"]),
            json_values
            | st.sampled_from(["https://x.test/a", "http://127.0.0.1:1/", "run.failed"])
            | st.lists(st.sampled_from(["run.failed", "ping", "sync.finished", 3]), max_size=4),
            max_size=4,
        )
    )
    def check(body: dict[str, Any]) -> None:
        response = api.post("/webhooks", json=body)
        assert response.status_code in (201, 422), response.get_data(as_text=True)[:400]
        if response.status_code == 422:
            assert response.get_json()["error"]["details"]

    check()


def test_the_documented_url_pattern_is_what_the_server_accepts(api, monkeypatch):
    import re
    import socket

    from shared.webhooks.subscriptions import WEBHOOK_URL_PATTERN, check_webhook_url

    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a webhook URL was resolved at save time: {args[0]!r}")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    schemas = api.get("/openapi.json").get_json()["components"]["schemas"]
    for model in ("WebhookIn", "WebhookChange"):
        url = schemas[model]["properties"]["url"]
        url = next((s for s in url.get("anyOf", []) if s.get("type") == "string"), url)
        assert url["pattern"] == WEBHOOK_URL_PATTERN and url["format"] == "uri", model
        assert url["maxLength"] == 2000 and "SSRF guard" in url["description"]

    @FUZZ
    @given(st.from_regex(re.compile(WEBHOOK_URL_PATTERN.removesuffix("$")), fullmatch=True))
    def accepted(url: str) -> None:
        if len(url) <= 2000:
            assert check_webhook_url(url) == url

    accepted()
