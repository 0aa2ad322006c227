"""The OpenAPI document matches the routes, is structurally valid OpenAPI 3.1, and every error
the routing layer produces (404, 405, 413) keeps SPEC's error format."""

from __future__ import annotations

import re
from typing import Any

import pytest

PREFIX = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
RESPONSE_KEY = re.compile(r"^(default|[1-5]XX|[1-5][0-9]{2})$")
TEMPLATE_PARAM = re.compile(r"\{([^}/]+)\}")


def openapi_path(rule: str) -> str:
    """Flask's `/runs/<int:run_id>` (any converter, with arguments too) as `/runs/{run_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def api_routes(app: Any) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((openapi_path(rule.rule[len(PREFIX) :]), method.lower()))
    return routes


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture
def spec(api: Any) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.is_json
    return response.get_json()


def test_openapi_path_conversion() -> None:
    assert openapi_path("/runs/<int:run_id>/retry") == "/runs/{run_id}/retry"
    assert openapi_path("/behaviors/<name>") == "/behaviors/{name}"
    assert openapi_path("/x/<int(min=1):x_id>") == "/x/{x_id}"


def test_every_route_is_documented(app: Any, spec: dict[str, Any]) -> None:
    missing = api_routes(app) - documented(spec)
    assert not missing, f"routes missing from openapi.json: {sorted(missing)}"


def test_every_documented_operation_exists(app: Any, spec: dict[str, Any]) -> None:
    extra = documented(spec) - api_routes(app)
    assert not extra, f"openapi.json documents operations that do not exist: {sorted(extra)}"


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs are used: {ref}"
    node: Any = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        for item in value.values():
            found += _refs(item)
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def test_document_is_structurally_valid_openapi_31(spec: dict[str, Any]) -> None:
    problems: list[str] = []
    if not re.fullmatch(r"3\.1\.\d+", str(spec.get("openapi"))):
        problems.append(f"openapi: expected 3.1.x, got {spec.get('openapi')!r}")
    info = spec.get("info")
    if not isinstance(info, dict) or not info.get("title") or not info.get("version"):
        problems.append("info: title and version are required")
    assert isinstance(spec.get("paths"), dict) and spec["paths"], "paths: required"
    schemes = spec.get("components", {}).get("securitySchemes", {})
    for requirement in spec.get("security", []):
        for name in requirement:
            if name not in schemes:
                problems.append(f"security: unknown scheme {name!r}")
    seen_operation_ids: set[str] = set()
    for path, item in spec["paths"].items():
        if not path.startswith("/"):
            problems.append(f"{path}: paths start with /")
        template_params = set(TEMPLATE_PARAM.findall(path))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            if method not in HTTP_METHODS:
                if method not in ("parameters", "summary", "description", "servers", "$ref"):
                    problems.append(f"{path}.{method}: not an OpenAPI path item field")
                continue
            if not isinstance(op.get("summary", ""), str):
                problems.append(f"{where}: summary must be a string")
            if op.get("operationId"):
                if op["operationId"] in seen_operation_ids:
                    problems.append(f"{where}: duplicate operationId {op['operationId']}")
                seen_operation_ids.add(op["operationId"])
            responses = op.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{where}: responses required")
                responses = {}
            for status, response in responses.items():
                if not RESPONSE_KEY.match(str(status)):
                    problems.append(f"{where}: bad response key {status!r}")
                if "$ref" not in response and not isinstance(response.get("description"), str):
                    problems.append(f"{where} {status}: description required")
            declared: dict[tuple[str, str], dict[str, Any]] = {}
            for param in [*item.get("parameters", []), *op.get("parameters", [])]:
                if "$ref" in param:
                    param = _resolve(spec, param["$ref"])
                if param.get("in") not in ("path", "query", "header", "cookie"):
                    problems.append(f"{where}: parameter {param.get('name')} has bad 'in'")
                if "schema" not in param and "content" not in param:
                    problems.append(f"{where}: parameter {param.get('name')} needs a schema")
                declared[(param.get("in"), param.get("name"))] = param
            path_params = {name for (where_in, name) in declared if where_in == "path"}
            for name in template_params - path_params:
                problems.append(f"{where}: path parameter {{{name}}} is not declared")
            for name in path_params - template_params:
                problems.append(f"{where}: parameter {name} is not in the path")
            for name in path_params & template_params:
                if declared[("path", name)].get("required") is not True:
                    problems.append(f"{where}: path parameter {name} must be required")
            body = op.get("requestBody")
            if body is not None and not isinstance(body.get("content"), dict):
                problems.append(f"{where}: requestBody needs content")
    for ref in _refs(spec):
        _resolve(spec, ref)
    assert not problems, "\n".join(problems)


def test_error_schema_is_the_spec_format(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    inner = error["properties"]["error"]
    assert set(inner["properties"]) == {"code", "message", "details"}
    assert set(inner["required"]) >= {"code", "message"}


# --------------------------------------------------------------------------- routing errors


def assert_spec_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body


def test_every_wrong_method_is_405_in_spec_format(app: Any, api: Any) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<int[^>]*>", "1", rule.rule[len(PREFIX) :])
        path = re.sub(r"<[^>]+>", "x", path)
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            # Another rule may serve the same URL with this method (e.g. /behaviors/x/runs).
            adapter = app.url_map.bind("localhost")
            try:
                adapter.match(PREFIX + path, method=method)
                continue
            except Exception:  # noqa: BLE001 - werkzeug raises MethodNotAllowed or NotFound
                pass
            response = getattr(api, method.lower())(path)
            body = assert_spec_error(response, 405, "method_not_allowed")
            assert "Allow" in response.headers, body
            checked += 1
    assert checked >= 10


def test_unknown_api_path_is_404_in_spec_format(api: Any) -> None:
    assert_spec_error(api.get("/no-such-thing"), 404, "not_found")
    assert_spec_error(api.get("/services/not-a-number"), 404, "not_found")


def test_body_over_max_content_length_is_413_in_spec_format(app: Any, api: Any) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"name": "' + b"a" * limit + b'"}'
    for path in ("/services", "/behaviors", "/accounts/link", "/packages"):
        response = api.post(path, data=body, content_type="application/json")
        assert_spec_error(response, 413)


def test_unauthenticated_error_is_in_spec_format(client: Any) -> None:
    assert_spec_error(client.get(f"{PREFIX}/services"), 401, "unauthorized")
    assert_spec_error(client.post(f"{PREFIX}/services", json={}), 401, "unauthorized")


# --------------------------------------------------------------------------- the typed contract


def test_document_passes_an_openapi_31_validator(spec: dict[str, Any]) -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = [str(e.message) for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_every_operation_has_an_id_and_documents_its_errors(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["operationId"], (method, path)
            assert "401" in op["responses"], (method, path)
            if "{" in path:
                assert "404" in op["responses"], (method, path)
            if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
                assert "422" in op["responses"], (method, path)


def test_run_schema_has_every_field_the_api_returns(spec: dict[str, Any]) -> None:
    run = spec["components"]["schemas"]["RunOut"]["properties"]
    for name in ("max_attempts", "retries", "replay_of", "cancel_requested", "current_step",
                 "attempt_history", "steps", "waits", "wait_reason"):  # fmt: skip
        assert name in run, name
    assert spec["components"]["schemas"]["RunOut"]["additionalProperties"] is False


def _service(api: Any, name: str = "svc") -> int:
    response = api.post("/services", json={"name": name, "client_id": "c", "client_secret": "s"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.mark.parametrize("value", ["yes", "null", "TRUE", "on", "", "2"])
def test_query_booleans_accept_only_true_false_1_0(api: Any, named_account: Any,
                                                   value: str) -> None:  # fmt: skip
    named_account("acme")  # under its own service: that one has an account
    service_id = api.get("/services").get_json()["services"][0]["id"]
    response = api.delete(f"/services/{service_id}?confirm={value}")
    body = assert_spec_error(response, 422, "validation_failed")
    assert body["error"]["details"] == ["confirm: expected true, false, 1 or 0"]
    assert api.get(f"/services/{service_id}").status_code == 200  # nothing was deleted


def test_query_boolean_false_is_a_refusal_and_1_deletes(api: Any, named_account: Any) -> None:
    named_account("acme")
    service_id = api.get("/services").get_json()["services"][0]["id"]
    assert_spec_error(api.delete(f"/services/{service_id}?confirm=0"), 409)
    response = api.delete(f"/services/{service_id}?confirm=1")
    assert response.status_code == 200, response.get_json()
    assert api.get(f"/services/{service_id}").status_code == 404


@pytest.mark.parametrize("name", ["status", "behavior", "cursor", "limit"])
def test_empty_filter_values_are_422(api: Any, name: str) -> None:
    body = assert_spec_error(api.get(f"/runs?{name}="), 422, "validation_failed")
    assert [d.split(":")[0] for d in body["error"]["details"]] == [name]


def test_invalid_body_lists_every_problem_by_path(api: Any) -> None:
    response = api.post("/services", json={"provider": "x", "session_timeout_minutes": "60"})
    body = assert_spec_error(response, 422, "validation_failed")
    fields = sorted(d.split(":")[0] for d in body["error"]["details"])
    assert fields == ["client_id", "client_secret", "name", "provider", "session_timeout_minutes"]
    assert "name: required" in body["error"]["details"]


def test_patch_with_an_empty_key_is_422(api: Any) -> None:
    service_id = _service(api)
    body = assert_spec_error(api.patch(f"/services/{service_id}", json={"": None}), 422)
    assert body["error"]["details"] == ['"": unknown field']


def test_unparseable_json_is_400_and_a_non_object_is_400(api: Any) -> None:
    for data in (b"{", b"[]", b"null"):
        response = api.post("/services", data=data, content_type="application/json")
        assert_spec_error(response, 400, "bad_request")


def test_trigger_payload_problems_are_listed_by_path(api: Any) -> None:
    definition = {"name": "needs-email", "inputs": {"email": {"type": "string", "required": True}},
                  "steps": [{"id": "s", "action": "set", "vars": {"x": 1}}]}  # fmt: skip
    assert api.post("/behaviors", json=definition).status_code == 201
    body = assert_spec_error(api.post("/behaviors/needs-email/runs", json={"payload": {}}), 422)
    assert body["error"]["details"] == ["payload.email: required"]
    body = assert_spec_error(api.post("/behaviors/needs-email/runs", json={"payload": 5}), 422)
    assert [d.split(":")[0] for d in body["error"]["details"]] == ["payload"]


def test_every_cursor_the_pattern_allows_is_accepted(api: Any) -> None:
    for cursor in ("r0", "r1", "r2147483647", "r0099"):
        assert api.get(f"/runs?cursor={cursor}").status_code == 200, cursor
    for cursor in ("r2147483648", "r-1", "x1", "r"):
        assert_spec_error(api.get(f"/runs?cursor={cursor}"), 422)


def test_integers_in_bodies_take_integral_numbers_only(api: Any) -> None:
    service_id = _service(api)
    response = api.patch(f"/services/{service_id}", json={"api_reserve_percent": 37.0})
    assert response.status_code == 200 and response.get_json()["api_reserve_percent"] == 37
    for value in (37.5, "37", True):
        body = assert_spec_error(
            api.patch(f"/services/{service_id}", json={"api_reserve_percent": value}), 422
        )
        assert body["error"]["details"][0].startswith("api_reserve_percent:"), body


def test_non_ascii_service_name_clash_is_409_not_500(api: Any) -> None:
    # SQLite's lower() folds ASCII only; the exact name must still be found.
    _service(api, "Äpfel")
    response = api.post("/services", json={"name": "Äpfel", "client_id": "c", "client_secret": "s"})
    assert_spec_error(response, 409, "conflict")


@pytest.mark.parametrize("value", ["W\x00r", ""])
def test_schedule_filter_with_nul_or_empty_is_422(api: Any, value: str) -> None:
    # Found by schemathesis: a NUL reached PostgreSQL (a 500); an empty filter is not "none".
    body = assert_spec_error(api.get("/schedules", query_string={"behavior": value}), 422)
    assert [d.split(":")[0] for d in body["error"]["details"]] == ["behavior"]


def test_every_integer_in_every_body_takes_integral_numbers(app: Any) -> None:
    # Found by schemathesis: `every_seconds: 2888.0` (schedules) and `lookback_seconds:
    # 51970.0` (syncs) fit the document's `integer` and were 422.
    from pydantic import ValidationError

    from web.api.contract import OPERATIONS

    checked = []
    for model in dict.fromkeys(op.body for op in OPERATIONS if op.body is not None):
        for name, prop in model.model_json_schema().get("properties", {}).items():
            options = prop.get("anyOf", [prop])
            integer = next((o for o in options if o.get("type") == "integer"), None)
            if integer is None:
                continue
            value = float(max(integer.get("minimum", 1), 1, integer.get("exclusiveMinimum", 0) + 1))
            try:
                model.model_validate({name: value}, strict=True)
            except ValidationError as exc:
                wrong = [e for e in exc.errors() if e["loc"][:1] == (name,)]
                assert wrong == [], (model.__name__, name, value)
            try:
                model.model_validate({name: value + 0.5}, strict=True)
            except ValidationError as exc:
                assert any(e["loc"][:1] == (name,) for e in exc.errors()), (model, name)
            else:
                raise AssertionError(f"{model.__name__}.{name} took {value + 0.5}")
            checked.append(f"{model.__name__}.{name}")
    assert {"ScheduleChange.every_seconds", "SyncPatch.lookback_seconds"} <= set(checked)
