"""One HTTP exchange: always a timeout, failures as `TransportError`, a redacted summary."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.exceptions import SSLError as Urllib3SSLError

from .errors import ResponseLost, TransportError
from .redact import redact_body, redact_headers, redact_text, redact_url

log = logging.getLogger("forcebot.salesforce")

OnExchange = Callable[[dict[str, Any]], None]


class StopSending(Exception):  # noqa: N818 - a signal, not an error of the call
    """Raised by an `on_exchange` callback to stop its caller: the work is no longer ours.

    Every other bookkeeping failure is logged and the response returned; this one propagates,
    so that a worker that lost its run sends nothing more after the request in flight.
    """


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine (127.0.0.1, localhost, ::1)."""
    return is_loopback(urlsplit(url).hostname)


def allowed_transport(url: str) -> bool:
    """https anywhere; plain http only to a loopback host (the simulator, a local test server)."""
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and is_loopback_url(url))


def require_secure(url: str) -> None:
    """Refuse to send credentials unless `allowed_transport`."""
    if allowed_transport(url):
        return
    parts = urlsplit(url)
    raise TransportError(
        f"refusing to send credentials over {parts.scheme or 'a relative URL'}: {parts.hostname}",
        error_code="insecure_transport",
        retryable=False,
    )


# requests' errors raised before anything is written: the URL or headers are unusable.
_BEFORE_SENDING = (
    requests.exceptions.URLRequired,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidJSONError,
)
# urllib3's reasons for failing to open a connection (DNS, refused, connect timeout, TLS
# handshake): the request itself was never written.
_CONNECT_REASONS = (NewConnectionError, ConnectTimeoutError, Urllib3SSLError)


def nothing_sent(exc: requests.RequestException) -> bool:
    """True only when `exc` certainly happened before the request was written.

    A connect error or connect timeout (requests wraps urllib3's MaxRetryError around the
    connection's failure) is safe to send again; a read timeout, a connection closed or reset
    while waiting for the answer, or a truncated answer is not: the server may have applied
    the request. Anything not known to be a connect-phase error counts as possibly sent.
    """
    if isinstance(exc, (requests.ConnectTimeout, *_BEFORE_SENDING)):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        return isinstance(reason.reason, _CONNECT_REASONS)
    return False


def send(
    http: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    on_exchange: OnExchange | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; report it to `on_exchange` (secrets redacted) whatever happens.

    A failure before the request was written raises `TransportError`; one after it may have
    reached the server (read timeout, reset, truncated answer) raises `ResponseLost`.
    """
    started = time.monotonic()
    response: requests.Response | None = None
    error: str | None = None
    try:
        response = http.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        return response
    except requests.Timeout as exc:
        error = f"timed out after {timeout:g}s"
        if nothing_sent(exc):
            raise TransportError(f"connecting {error}", error_code="timeout") from exc
        raise ResponseLost(
            f"no response within {timeout:g}s after the request was sent", error_code="timeout"
        ) from exc
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"
        host = urlsplit(url).hostname
        if nothing_sent(exc):
            raise TransportError(
                f"could not reach {host}: {type(exc).__name__}", error_code="connection_error"
            ) from exc
        raise ResponseLost(
            f"{host} closed the connection after the request was sent: {type(exc).__name__}",
            error_code="connection_error",
        ) from exc
    finally:
        if on_exchange is not None:
            # Bookkeeping never replaces the response (or the error) it describes.
            try:
                on_exchange(_summary(method, url, kwargs, response, error, started))
            except StopSending:
                raise
            except Exception:  # noqa: BLE001
                log.warning("exchange not recorded: %s %s", method, redact_url(url), exc_info=True)


def _summary(
    method: str,
    url: str,
    kwargs: dict[str, Any],
    response: requests.Response | None,
    error: str | None,
    started: float,
) -> dict[str, Any]:
    request = response.request if response is not None else None
    request_headers = dict(request.headers) if request is not None else kwargs.get("headers") or {}
    if request is not None:
        request_body: Any = request.body
    elif kwargs.get("json") is not None:
        request_body = kwargs["json"]
    else:
        request_body = kwargs.get("data")
    content_type = str(request_headers.get("Content-Type", ""))
    return {
        "method": method.upper(),
        "url": redact_url(request.url if request is not None and request.url else url),
        "status": response.status_code if response is not None else None,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        "request_headers": redact_headers(request_headers),
        "request_body": redact_body(request_body, content_type),
        "response_headers": redact_headers(response.headers) if response is not None else {},
        "response_body": (
            redact_body(response.content, response.headers.get("Content-Type", ""))
            if response is not None
            else None
        ),
        "error": redact_text(error) if error else None,
    }
