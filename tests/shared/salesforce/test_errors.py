"""`from_response` maps status and errorCode (and odd bodies) onto the error tree."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from shared.salesforce.errors import (
    DailyLimitExceeded,
    Forbidden,
    InvalidField,
    InvalidGrant,
    InvalidSession,
    MalformedQuery,
    NotFound,
    RateLimited,
    RequestError,
    SalesforceError,
    ServerError,
    TokenError,
    parse_retry_after,
)


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    if isinstance(body, str):
        resp._content = body.encode()
        resp.headers["Content-Type"] = "text/html" if "<" in body else "text/plain"
    else:
        resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = "application/json"
    resp.headers.update(headers or {})
    return resp


def sf(status: int, code: str, message: str, **headers: str) -> requests.Response:
    return response(status, [{"errorCode": code, "message": message}], headers)


@pytest.mark.parametrize(
    ("resp", "cls", "code", "retryable"),
    [
        (
            sf(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
            RateLimited,
            "REQUEST_LIMIT_EXCEEDED",
            True,
        ),
        (
            sf(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            DailyLimitExceeded,
            "REQUEST_LIMIT_EXCEEDED",
            False,
        ),
        (
            sf(400, "MALFORMED_QUERY", "unexpected token: FROM"),
            MalformedQuery,
            "MALFORMED_QUERY",
            False,
        ),
        (sf(400, "INVALID_FIELD", "No such column 'Foo'"), InvalidField, "INVALID_FIELD", False),
        (
            sf(404, "NOT_FOUND", "The requested resource does not exist"),
            NotFound,
            "NOT_FOUND",
            False,
        ),
        (
            sf(401, "INVALID_SESSION_ID", "Session expired or invalid"),
            InvalidSession,
            "INVALID_SESSION_ID",
            False,
        ),
        (sf(403, "INSUFFICIENT_ACCESS", "no"), Forbidden, "INSUFFICIENT_ACCESS", False),
        (sf(400, "SOMETHING_NEW", "new"), RequestError, "SOMETHING_NEW", False),
        (sf(500, "UNKNOWN_EXCEPTION", "boom"), ServerError, "UNKNOWN_EXCEPTION", True),
        (response(429, "Too Many Requests"), RateLimited, "rate_limited", True),
        (response(420, ""), RateLimited, "rate_limited", True),
        (
            response(
                503,
                "<html><head><title>503 Service Unavailable</title></head>"
                "<body><h1>down</h1></body></html>",
            ),
            ServerError,
            "http_503",
            True,
        ),
        (
            response(
                400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            ),
            InvalidGrant,
            "invalid_grant",
            False,
        ),
        (
            response(
                400,
                {"error": "invalid_client_id", "error_description": "client identifier invalid"},
            ),
            TokenError,
            "invalid_client_id",
            False,
        ),
        (response(403, "Bad_OAuth_Token"), Forbidden, "forbidden", False),
    ],
)
def test_from_response(resp, cls, code, retryable):
    error = SalesforceError.from_response(resp)
    assert type(error) is cls
    assert error.error_code == code
    assert error.retryable is retryable
    assert error.status == resp.status_code
    assert set(error.to_dict()) == {"code", "message", "status", "fields"}


def test_html_body_message_is_readable():
    error = SalesforceError.from_response(
        response(502, "<html><head><title>502 Bad Gateway</title></head><body/></html>")
    )
    assert error.message == "502 Bad Gateway"


def test_fields_and_retry_after_are_kept():
    resp = response(400, [{"errorCode": "INVALID_FIELD", "message": "bad", "fields": ["Email"]}])
    assert SalesforceError.from_response(resp).fields == ["Email"]
    limited = SalesforceError.from_response(response(429, "slow down", {"Retry-After": "2"}))
    assert limited.retry_after == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_invalid_grant_keeps_salesforce_description():
    expired = "expired access/refresh token"
    error = SalesforceError.from_response(
        response(400, {"error": "invalid_grant", "error_description": expired})
    )
    assert isinstance(error, InvalidGrant)
    assert error.error_description == expired
    assert error.message == expired
