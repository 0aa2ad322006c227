"""One error tree for everything that can go wrong talking to Salesforce.

    SalesforceError                  status, error_code, message, fields, retryable, retry_after
    ├── TransportError               timeout, connection refused/reset        retryable
    │   └── ResponseLost             sent, then no whole answer (read timeout, reset): it may
    │                                have been applied; a create must not be sent again blindly
    ├── ServerError                  5xx (also HTML pages from an edge proxy) retryable
    ├── RateLimited                  429, 420, 403 REQUEST_LIMIT_EXCEEDED     retryable
    │   │                            (concurrent "ConcurrentPerOrgLongTxn"), our own per-account cap
    │   └── DailyLimitExceeded       403 REQUEST_LIMIT_EXCEEDED "TotalRequests" not retryable: wait
    ├── InvalidSession               401 INVALID_SESSION_ID (the client refreshes once and replays)
    ├── RequestError                 any other 4xx                            not retryable
    │   ├── MalformedQuery           MALFORMED_QUERY, INVALID_QUERY_*
    │   ├── InvalidField             INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE, ...
    │   ├── NotFound                 404, NOT_FOUND
    │   ├── Forbidden                other 403s (INSUFFICIENT_ACCESS, Bad_OAuth_Token)
    │   └── InvalidRecord            REQUIRED_FIELD_MISSING, DUPLICATE_VALUE, ...
    ├── TokenError                   OAuth error object {error, error_description}
    │   └── InvalidGrant             invalid_grant: the refresh token is revoked or expired
    ├── NeedsReauth                  the account must be linked again          not retryable
    ├── HostNotAllowed               absolute URL to a host that is not the account's
    └── QuotaReserveReached          scheduled work must wait: usage past the service's reserve

`SalesforceError.from_response(response)` picks the class from the HTTP status *and* the
errorCode: a 403 REQUEST_LIMIT_EXCEEDED is a rate limit, not a permission problem.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


class SalesforceError(Exception):
    """Base of the tree; `to_dict()` is what runs store as a step's error."""

    retryable_default = False
    default_code = "salesforce_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        fields: list[str] | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code or self.default_code
        self.fields = list(fields or [])
        self.retryable = self.retryable_default if retryable is None else retryable
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.error_code,
            "message": self.message,
            "status": self.status,
            "fields": list(self.fields),
        }

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}" if self.error_code else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.error_code!r})"

    @classmethod
    def from_response(cls, response: requests.Response) -> SalesforceError:
        """Map an error response to the most specific class of the tree."""
        return error_from_response(response)


class TransportError(SalesforceError):
    retryable_default = True
    default_code = "transport_error"


class ResponseLost(TransportError):
    """The request may have reached the server, and no complete response came back.

    A read timeout, or a connection closed or reset after the request was written. A
    connect error or connect timeout (nothing was sent) is a plain `TransportError`. Still
    retryable for idempotent calls; a non-idempotent one (a create, a POST) may have been
    applied, so the run engine fails such a step as `outcome_unknown` instead of sending it
    again.
    """


class ServerError(SalesforceError):
    retryable_default = True
    default_code = "server_error"


class RateLimited(SalesforceError):
    retryable_default = True
    default_code = "rate_limited"


class DailyLimitExceeded(RateLimited):
    retryable_default = False
    default_code = "REQUEST_LIMIT_EXCEEDED"


class InvalidSession(SalesforceError):
    default_code = "INVALID_SESSION_ID"


class RequestError(SalesforceError):
    default_code = "request_error"


class MalformedQuery(RequestError):
    default_code = "MALFORMED_QUERY"


class InvalidField(RequestError):
    default_code = "INVALID_FIELD"


class NotFound(RequestError):
    default_code = "NOT_FOUND"


class Forbidden(RequestError):
    default_code = "forbidden"


class InvalidRecord(RequestError):
    default_code = "invalid_record"


class TokenError(SalesforceError):
    """The token endpoint refused: `error` and `error_description` as Salesforce sent them."""

    default_code = "token_error"

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        *,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            error_description or error, status=status, error_code=error, retryable=retryable
        )
        self.error = error
        self.error_description = error_description or ""


class InvalidGrant(TokenError):
    pass


class NeedsReauth(SalesforceError):
    default_code = "needs_reauth"


class HostNotAllowed(SalesforceError):
    default_code = "host_not_allowed"


class QuotaReserveReached(SalesforceError):
    default_code = "quota_reserve_reached"


_QUERY_CODES = {
    "MALFORMED_QUERY",
    "INVALID_QUERY_FILTER_OPERATOR",
    "INVALID_QUERY_LOCATOR",
    "INVALID_QUERY_SCOPE",
    "MALFORMED_SEARCH",
    "INVALID_TYPE_FOR_OPERATION",
}
_FIELD_CODES = {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "NO_SUCH_COLUMN"}
_RECORD_CODES = {
    "REQUIRED_FIELD_MISSING",
    "DUPLICATE_VALUE",
    "DUPLICATES_DETECTED",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "STRING_TOO_LONG",
    "INVALID_EMAIL_ADDRESS",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "ENTITY_IS_DELETED",
    "INVALID_CROSS_REFERENCE_KEY",
    "MALFORMED_ID",
}
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _text_message(text: str, status: int) -> str:
    """A short readable message from a non-JSON body (an edge proxy's HTML page, plain text)."""
    match = _TITLE.search(text)
    if match:
        text = match.group(1)
    text = html.unescape(_TAGS.sub(" ", text))
    text = " ".join(text.split())
    return text[:300] or f"HTTP {status} with an empty body"


def _parse_body(response: requests.Response) -> tuple[str | None, str, list[str], bool]:
    """(errorCode, message, fields, is_oauth_error) from whatever body Salesforce sent."""
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    text = response.text or ""
    data: Any = None
    if "json" in content_type or text.lstrip().startswith(("[", "{")):
        try:
            data = response.json()
        except ValueError:
            data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        first = data[0]
        code = first.get("errorCode") or first.get("statusCode")
        fields = [str(f) for f in first.get("fields") or []]
        return code, str(first.get("message") or code or ""), fields, False
    if isinstance(data, dict):
        if "error" in data and isinstance(data["error"], str):
            desc = data.get("error_description")
            return data["error"], str(desc or data["error"]), [], True
        code = data.get("errorCode") or data.get("statusCode")
        if code or data.get("message"):
            fields = [str(f) for f in data.get("fields") or []]
            return code, str(data.get("message") or code), fields, False
    return None, _text_message(text, status), [], False


def _error_class(status: int, code: str | None, message: str) -> type[SalesforceError]:
    """The most specific class; the errorCode wins over the status where they disagree."""
    if code == "REQUEST_LIMIT_EXCEEDED":
        return DailyLimitExceeded if "totalrequests" in message.lower() else RateLimited
    if status in (429, 420):
        return RateLimited
    if status >= 500:
        return ServerError
    if status == 401:
        return InvalidSession
    if code in _QUERY_CODES:
        return MalformedQuery
    if code in _FIELD_CODES:
        return InvalidField
    if status == 404 or code == "NOT_FOUND":
        return NotFound
    if code in _RECORD_CODES:
        return InvalidRecord
    if status == 403:
        return Forbidden
    if 400 <= status < 500:
        return RequestError
    return SalesforceError


# Without an errorCode these say which HTTP status it was instead of their class default.
_STATUS_CODED = (ServerError, RequestError, SalesforceError)


def error_from_response(response: requests.Response) -> SalesforceError:
    """Build the right `SalesforceError` for an error response (status and errorCode)."""
    status = response.status_code
    code, message, fields, oauth = _parse_body(response)
    if oauth and status < 500 and status not in (429, 420):
        cls = InvalidGrant if code == "invalid_grant" else TokenError
        return cls(str(code), message, status=status)
    error_class = _error_class(status, code, message)
    if code is None and error_class in _STATUS_CODED:
        code = f"http_{status}"
    return error_class(
        message,
        status=status,
        error_code=code,
        fields=fields,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
