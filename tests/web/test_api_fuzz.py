"""Fuzz the JSON API: no input gives a 5xx, every error is SPEC's format, a 4xx saves nothing.

Hypothesis generates bodies for every POST/PUT/PATCH route (junk JSON of every type, known
fields with wrong values, not-JSON bytes, wrong content types), bad query parameters and bad
path values. The last section pins each bug the fuzzing found as a plain example.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shared.models import Account, Behavior, BehaviorVersion, OAuthState, Run, Service

MODELS = (Service, Account, OAuthState, Behavior, BehaviorVersion, Run)
FUZZ = hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

BEHAVIOR = {
    "name": "fuzz-target",
    "inputs": {"email": {"type": "string", "required": True, "max_length": 50}},
    "steps": [{"id": "s", "action": "set", "vars": {"x": "{{ inputs.email }}"}}],
}

# Text that databases are picky about: NUL, unpaired surrogates, astral characters.
nasty_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "😀", "-1", "2" * 30, "²"]),
    st.text(min_size=300, max_size=400),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from([2**63, 2**70, -(2**70), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
junk = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(nasty_text, children, max_size=4),
    ),
    max_leaves=12,
)


def fields_with_junk(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects holding some of the route's own fields with junk values (and unknown ones)."""
    return st.dictionaries(st.sampled_from([*fields, "unknown"]), junk, max_size=len(fields) + 1)


def bodies(fields: list[str], valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid-looking objects with one field broken, objects of junk, and non-object JSON."""
    broken_one = st.builds(lambda key, value: {**valid, key: value}, st.sampled_from(fields), junk)
    missing_one = st.builds(
        lambda key: {k: v for k, v in valid.items() if k != key}, st.sampled_from(fields)
    )
    return st.one_of(broken_one, missing_one, fields_with_junk(fields), junk)


def encode(body: Any) -> bytes:
    # json.dumps writes NaN/Infinity (which Python's json reads back) and escapes surrogates.
    return json.dumps(body).encode()


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [b"", b"{", b"\xff\xfe", b'{"name": "\xff"}', b"null", b"[]", b'"x"', b"1", b"NaN"]
    ),
)
content_types = st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/xml"]
)


# --------------------------------------------------------------------------- helpers


def row_counts(runtime: Any) -> dict[str, int]:
    with runtime.Session() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in MODELS
        }


def assert_contract(response: Any, label: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, f"{label}: {response.status_code} {text[:500]}"
    assert "Traceback" not in text, f"{label}: {text[:500]}"
    if response.status_code >= 400:
        assert response.is_json, f"{label}: not JSON: {text[:300]}"
        body = response.get_json()
        assert isinstance(body, dict) and set(body) == {"error"}, f"{label}: {body}"
        assert set(body["error"]) <= {"code", "message", "details"}, f"{label}: {body}"
        assert isinstance(body["error"].get("code"), str) and body["error"]["code"], label
        assert isinstance(body["error"].get("message"), str) and body["error"]["message"], label


class Target:
    """Ids and names the fuzzed routes can point at, and a checked request helper."""

    def __init__(self, api: Any, runtime: Any) -> None:
        self.api = api
        self.runtime = runtime
        response = api.post(
            "/services",
            json={"name": "fuzz", "client_id": "cid", "client_secret": "s3cret",
                  "login_url": "http://127.0.0.1:1"},
        )  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        self.service_id = response.get_json()["id"]
        response = api.post("/behaviors", json=BEHAVIOR)
        assert response.status_code == 201, response.get_data(as_text=True)
        response = api.post("/behaviors/fuzz-target/runs", json={"payload": {"email": "a@b.c"}})
        assert response.status_code == 202, response.get_data(as_text=True)
        self.run_id = response.get_json()["id"]
        response = api.post("/webhooks", json=VALID_WEBHOOK)
        assert response.status_code == 201, response.get_data(as_text=True)
        self.webhook_id = response.get_json()["id"]
        self.delivery_id = api.post(f"/webhooks/{self.webhook_id}/test").get_json()["id"]

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        before = row_counts(self.runtime)
        response = getattr(self.api, method)(path, **kwargs)
        label = f"{method.upper()} {path} {kwargs!r}"[:400]
        assert_contract(response, label)
        if 400 <= response.status_code < 500:
            assert row_counts(self.runtime) == before, f"{label}: a 4xx saved rows"
        return response


@pytest.fixture
def target(api: Any, runtime: Any) -> Target:
    return Target(api, runtime)


SERVICE_FIELDS = [
    "name", "provider", "client_id", "client_secret", "login_url", "api_version", "scopes",
    "session_timeout_minutes", "use_introspection", "api_reserve_percent",
]  # fmt: skip
SCHEDULE_FIELDS = ["name", "behavior", "cron", "every_seconds", "timezone", "payload", "enabled"]
VALID_SERVICE = {"name": "svc-x", "client_id": "abc", "client_secret": "def"}
WEBHOOK_FIELDS = ["url", "events", "enabled", "description"]
SYNC_FIELDS = ["name", "account_id", "object", "fields", "cron", "every_seconds", "timezone",
               "enabled", "api", "bulk_threshold", "lookback_seconds", "on_change"]  # fmt: skip
VALID_WEBHOOK = {"url": "https://hooks.example.com/x", "events": ["run.failed"]}


def body_routes(target: Target) -> dict[tuple[str, str], tuple[list[str], dict[str, Any]]]:
    """Every POST/PUT/PATCH route (as the url_map spells it) with its fields and a valid body."""
    definition_fields = ["name", "description", "account", "inputs", "steps", "result",
                         "max_attempts", "timeout_seconds", "source", "format"]  # fmt: skip
    return {
        ("post", "/services"): (SERVICE_FIELDS, VALID_SERVICE),
        ("patch", "/services/<int:service_id>"): (SERVICE_FIELDS, {"client_secret": ""}),
        ("post", "/accounts/link"): (
            ["service_id", "name"],
            {"service_id": target.service_id, "name": "acct-x"},
        ),
        ("post", "/accounts/<int:account_id>/refresh"): ([], {}),
        ("post", "/behaviors"): (definition_fields, {**BEHAVIOR, "name": "fuzz-new"}),
        ("put", "/behaviors/<name>"): (definition_fields, BEHAVIOR),
        ("post", "/behaviors/<name>/runs"): (
            ["payload", "idempotency_key"],
            {"payload": {"email": "x@y.z"}, "idempotency_key": "k"},
        ),
        ("post", "/packages"): (
            ["source", "format", "account", "package"],
            {"package": {"behaviors": [BEHAVIOR]}},
        ),
        ("post", "/schedules"): (
            SCHEDULE_FIELDS,
            {
                "name": "fuzz-s",
                "behavior": "fuzz-target",
                "every_seconds": 60,
                "payload": {"email": "x@y.z"},
            },
        ),  # fmt: skip
        ("patch", "/schedules/<int:schedule_id>"): (SCHEDULE_FIELDS, {"every_seconds": 30}),
        ("post", "/runs/<int:id>/retry"): ([], {}),
        ("post", "/runs/<int:id>/cancel"): ([], {}),
        ("post", "/runs/<int:id>/replay"): ([], {}),
        # Syncs need a linked account's describe to accept a body; their bodies are fuzzed by
        # the schemathesis test against a live app with a linked simulator account.
        ("post", "/syncs"): (SYNC_FIELDS, {}),
        ("patch", "/syncs/<int:id>"): (SYNC_FIELDS, {}),
        ("post", "/syncs/<int:id>/runs"): (["full"], {}),
        ("post", "/webhooks"): (WEBHOOK_FIELDS, VALID_WEBHOOK),
        ("patch", "/webhooks/<int:webhook_id>"): (WEBHOOK_FIELDS, {"enabled": False}),
        ("post", "/webhooks/<int:webhook_id>/test"): ([], {}),
        ("post", "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver"): ([], {}),
    }


def concrete(rule: str, target: Target) -> str:
    return (
        rule.replace("<int:service_id>", str(target.service_id))
        .replace("<int:account_id>", "1")
        .replace("<int:schedule_id>", "1")
        .replace("<int:id>", str(target.run_id))
        .replace("<name>", "fuzz-target")
        .replace("<int:webhook_id>", str(target.webhook_id))
        .replace("<int:delivery_id>", str(target.delivery_id))
    )


def test_every_body_route_is_fuzzed(app: Any, target: Target) -> None:
    """A new POST/PUT/PATCH route must be added to body_routes() (and so to the fuzzing)."""
    routes = {
        (method.lower(), rule.rule.removeprefix("/api/v1"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods & {"POST", "PUT", "PATCH"}
    }
    assert routes == set(body_routes(target))


@pytest.mark.parametrize(
    "route",
    [
        ("post", "/services"),
        ("patch", "/services/<int:service_id>"),
        ("post", "/accounts/link"),
        ("post", "/behaviors"),
        ("put", "/behaviors/<name>"),
        ("post", "/behaviors/<name>/runs"),
        ("post", "/packages"),
        ("post", "/webhooks"),
        ("patch", "/webhooks/<int:webhook_id>"),
    ],
    ids=lambda r: f"{r[0]}:{r[1]}",
)
def test_fuzz_json_bodies(target: Target, route: tuple[str, str]) -> None:
    fields, valid = body_routes(target)[route]
    method, rule = route

    @FUZZ
    @given(body=bodies(fields, valid))
    def check(body: Any) -> None:
        target.send(method, concrete(rule, target), data=encode(body),
                    content_type="application/json")  # fmt: skip

    check()


@pytest.mark.parametrize(
    "route",
    [
        ("post", "/services"),
        ("patch", "/services/<int:service_id>"),
        ("post", "/accounts/link"),
        ("post", "/accounts/<int:account_id>/refresh"),
        ("post", "/behaviors"),
        ("put", "/behaviors/<name>"),
        ("post", "/behaviors/<name>/runs"),
        ("post", "/packages"),
        ("post", "/runs/<int:id>/cancel"),
        ("post", "/webhooks"),
        ("patch", "/webhooks/<int:webhook_id>"),
    ],
    ids=lambda r: f"{r[0]}:{r[1]}",
)
def test_fuzz_raw_bodies_and_content_types(target: Target, route: tuple[str, str]) -> None:
    method, rule = route

    @FUZZ
    @given(data=raw_bodies, content_type=content_types)
    def check(data: bytes, content_type: str) -> None:
        target.send(method, concrete(rule, target), data=data, content_type=content_type)

    check()


def test_fuzz_source_definitions(target: Target) -> None:
    """Definition text (YAML/JSON) that parses to anything at all."""
    yaml_scalars = st.sampled_from(
        ["2024-01-01", "2024-01-01T10:00:00Z", ".nan", ".inf", "!!binary aGk=", "!!set {a}",
         "'\\0'", '"\\0"', '"\\ud800"', "1e999", "99999999999999999999999", "~", "[]", "{}",
         "!!python/object:os.system {}", "&a x", "*a", "? [a]: b"]
    )  # fmt: skip
    keys = st.sampled_from(["name", "description", "max_attempts", "timeout_seconds",
                            "account", "result", "inputs"])  # fmt: skip

    @FUZZ
    @given(key=keys, value=yaml_scalars, fmt=st.sampled_from(["yaml", None]))
    def check(key: str, value: str, fmt: str | None) -> None:
        source = (
            "name: fuzz-src\nsteps:\n  - id: s\n    action: set\n    vars: {v: " + value + "}\n"
        )
        if key != "name":
            source += f"{key}: {value}\n"
        body: dict[str, Any] = {"source": source}
        if fmt:
            body["format"] = fmt
        target.send("post", "/behaviors", json=body)
        target.send("put", "/behaviors/fuzz-target", json={"source": source.replace(
            "fuzz-src", "fuzz-target")})  # fmt: skip

    check()


# --------------------------------------------------------------------------- queries and ids

# A URL carries bytes; unpaired surrogates cannot be percent-encoded at all.
url_text = nasty_text.filter(lambda value: "\ud800" not in value and "\udfff" not in value).map(
    lambda value: value.encode("utf-8", "replace").decode("utf-8")
)


def test_fuzz_list_runs_query(target: Target) -> None:
    values = st.one_of(
        url_text, st.sampled_from(["0", "-1", "201", "1e3", "9" * 40, "cjE", "r1", "cjI", "²"])
    )
    names = st.sampled_from(["limit", "cursor", "status", "behavior", "unknown", "limit[]"])

    @FUZZ
    @given(query=st.dictionaries(names, values, max_size=4))
    def check(query: dict[str, str]) -> None:
        target.send("get", "/runs", query_string=query)

    check()


ID_ROUTES = [
    ("get", "/services/{}"),
    ("patch", "/services/{}"),
    ("delete", "/services/{}"),
    ("get", "/accounts/{}"),
    ("delete", "/accounts/{}"),
    ("post", "/accounts/{}/refresh"),
    ("get", "/runs/{}"),
    ("post", "/runs/{}/retry"),
    ("post", "/runs/{}/cancel"),
    ("post", "/runs/{}/replay"),
    ("get", "/behaviors/{}"),
    ("put", "/behaviors/{}"),
    ("delete", "/behaviors/{}"),
    ("post", "/behaviors/{}/runs"),
]


def test_fuzz_path_values(target: Target) -> None:
    ids = st.one_of(
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.sampled_from(["2", str(2**31 - 1), str(2**31), str(2**32), str(2**63), str(2**64),
                         "abc", "%00", "x%00y",
                         "1.5", "-1", "%F0%9F%98%80", "%ff", "." * 3]),
    )  # fmt: skip

    @FUZZ
    @given(route=st.sampled_from(ID_ROUTES), value=ids)
    def check(route: tuple[str, str], value: str) -> None:
        method, path = route
        kwargs = {"json": {"payload": {"email": "a@b.c"}}} if method in ("post", "put") else {}
        target.send(method, path.format(value), **kwargs)

    check()


def test_fuzz_behavior_version_query(target: Target) -> None:
    @FUZZ
    @given(version=st.one_of(url_text, st.integers(min_value=-(2**80), max_value=2**80).map(str)))
    def check(version: str) -> None:
        target.send("get", "/behaviors/fuzz-target", query_string={"version": version})

    check()


# --------------------------------------------------------------------------- pinned findings


def test_patch_service_with_empty_secret_keeps_it(target: Target, api: Any, runtime: Any) -> None:
    with runtime.Session() as session:
        before = session.get(Service, target.service_id).client_secret_enc
    response = target.send("patch", f"/services/{target.service_id}", json={"client_secret": ""})
    assert response.status_code == 200
    assert "client_secret" not in response.get_json()
    with runtime.Session() as session:
        service = session.get(Service, target.service_id)
        assert service.client_secret_enc == before
        assert runtime.crypto.decrypt(service.client_secret_enc) == "s3cret"


def test_account_id_of_another_type_is_404(target: Target) -> None:
    # A service id and a run id are not account ids.
    for other in (target.service_id, target.run_id, 2**31 - 1):
        response = target.send("get", f"/accounts/{other}")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    ["/services/{}", "/accounts/{}", "/runs/{}", "/runs/{}/cancel"],
)
def test_ids_beyond_64_bits_are_404(target: Target, path: str) -> None:
    method = "post" if path.endswith("cancel") else "get"
    for value in (2**31, 2**63, 2**70):
        response = target.send(method, path.format(value))
        assert response.status_code == 404


BAD_STRINGS: list[Callable[[str], Any]] = [
    lambda s: s + "\x00",
    lambda s: s + "\ud800",
]


@pytest.mark.parametrize("make", BAD_STRINGS, ids=["nul", "surrogate"])
def test_unstorable_text_in_service_is_422(target: Target, make: Callable[[str], Any]) -> None:
    for field in ("name", "client_id", "client_secret", "scopes"):
        body = {**VALID_SERVICE, field: make("api refresh_token" if field == "scopes" else "v")}
        response = target.send("post", "/services", data=encode(body),
                               content_type="application/json")  # fmt: skip
        assert response.status_code == 422, (field, response.get_json())
        assert any(p.startswith(f"{field}:") for p in response.get_json()["error"]["details"])


def test_login_url_that_urlsplit_rejects_is_422(target: Target) -> None:
    for url in ("http://[::1", "https://[zz]", "https://" + "a" * 300 + ".example.com"):
        response = target.send("post", "/services", json={**VALID_SERVICE, "login_url": url})
        assert response.status_code == 422, url
        assert response.get_json()["error"]["details"][0].startswith("login_url:")


@pytest.mark.parametrize("value", ["\x00", "\ud800", math.nan, math.inf, 10**30])
def test_unstorable_payload_is_422(target: Target, value: Any) -> None:
    body = {"payload": {"email": "a@b.c", "extra": value}}
    response = target.send("post", "/behaviors/fuzz-target/runs", data=encode(body),
                            content_type="application/json")  # fmt: skip
    assert response.status_code in (400, 422), response.get_json()


def test_service_id_as_unicode_digits_is_422(target: Target) -> None:
    for value in ("²", "1" * 30, 2**31, 2**70, str(2**64)):
        response = target.send("post", "/accounts/link", json={"service_id": value, "name": "a"})
        assert response.status_code == 422
        assert response.get_json()["error"]["details"][0].startswith("service_id:")


@pytest.mark.parametrize(
    "cursor",
    ["csK", "cjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ", "cjIxNDc0ODM2NDg", "\x00", "r2147483648", "r"],
)
def test_bad_cursor_is_422(target: Target, cursor: str) -> None:
    response = target.send("get", "/runs", query_string={"cursor": cursor})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "snippet",
    ["description: 2024-01-01", "max_attempts: 99999999999999999999999", "timeout_seconds: .nan",
     "result: !!binary aGk=", "result: {a: 2024-01-01}", "result: !!set {a}",
     "description: \"a\\0b\"", "timeout_seconds: .inf"],
)  # fmt: skip
def test_unstorable_definition_values_are_422(target: Target, snippet: str) -> None:
    source = "name: fuzz-val\nsteps:\n  - {id: s, action: set, vars: {v: 1}}\n" + snippet + "\n"
    response = target.send("post", "/behaviors", json={"source": source, "format": "yaml"})
    assert response.status_code == 422, response.get_json()


@pytest.mark.parametrize("path", ["/services", "/behaviors", "/behaviors/fuzz-target/runs"])
def test_deeply_nested_body_is_400(target: Target, path: str) -> None:
    depth = 100_000
    response = target.send("post", path, data="[" * depth + "]" * depth,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    response = target.send("post", path, data='{"a":' * depth + "1" + "}" * depth,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_400(target: Target, constant: str) -> None:
    data = '{"name": "n", "client_id": "c", "client_secret": "s", "api_reserve_percent": %s}'
    response = target.send("post", "/services", data=data % constant,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "the body is not valid JSON"


def test_json_with_wrong_content_type_is_400(target: Target) -> None:
    response = target.send("post", "/services", data=json.dumps(VALID_SERVICE),
                           content_type="text/plain")  # fmt: skip
    assert response.status_code == 400
    assert "Content-Type: application/json" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("depth", [40, 500, 900])
def test_deep_but_parseable_values_are_422(target: Target, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    definition = json.dumps({**BEHAVIOR, "name": "deep"}).replace('"{{ inputs.email }}"', nested)
    cases = [
        ("/behaviors", definition),
        ("/packages", f'{{"package": {{"behaviors": [{definition}]}}}}'),
        ("/packages", json.dumps({"source": definition, "format": "json"})),
        ("/behaviors/fuzz-target/runs", f'{{"payload": {{"email": {nested}}}}}'),
    ]
    for path, data in cases:
        response = target.send("post", path, data=data, content_type="application/json")
        assert response.status_code in (400, 422), (path, response.get_json())
