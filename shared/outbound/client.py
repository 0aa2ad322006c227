"""Outbound HTTP without a Salesforce account: the SSRF guard, pinning, retries, redirects.

Every hop (the first request and each redirect) is checked by `guard.check_url` and sent
through a session pinned to the checked address (`transport.py`). Redirects are followed
(at most `MAX_REDIRECTS`) only when `follow_redirects` is true, and each target is checked
again; a 303, or a 301/302 after a method other than GET/HEAD, continues as GET without a
body (what browsers and requests do); a hop to another origin drops Authorization, Cookie and
Proxy-Authorization.

Credentials: the client never adds any. Before sending, it removes every header whose value
contains a stored Salesforce secret (any account's access or refresh token, any service's
client secret), whatever the header's name, and refuses (rule `credential`) a request whose
URL, query or body contains one. The removed header names are reported in the exchange
summary as `stripped_headers`.

Retries: 429, 5xx, timeouts and connection errors are retried in-process with the Salesforce
client's back-off (exponential, full jitter, Retry-After as a floor, at most
`max_inline_wait` seconds per wait) up to `max_attempts` sends; when they run out the error
is raised (retryable), so a run's engine can retry the run later. Other 4xx and all 2xx/3xx
come back as the response at once. A refused URL raises `Refused`, never retried. With
`resend_unanswered=False` a request that went out unanswered (read timeout, reset: a
`ResponseLost`) is not retried, because the receiver may have applied it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from shared.salesforce.errors import (
    RateLimited,
    ResponseLost,
    SalesforceError,
    ServerError,
    parse_retry_after,
)
from shared.salesforce.http import OnExchange, send
from shared.salesforce.redact import redact_url
from shared.salesforce.retry import call_with_retries

from .guard import Policy, Refused, check_url
from .transport import pinned_session

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 120.0
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
CROSS_ORIGIN_DROP = ("authorization", "cookie", "proxy-authorization")
STRIPPED_MARK = "[stripped: carried a Salesforce credential]"
MIN_SECRET_LENGTH = 8  # shorter strings would match ordinary header values by accident

OnResult = Callable[[str, str], None]  # (host_class, status or rule)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


class OutboundClient:
    """Requests to any allowed URL; `on_exchange` gets each hop's redacted summary."""

    def __init__(
        self,
        policy: Policy,
        *,
        on_exchange: OnExchange | None = None,
        on_result: OnResult | None = None,
        secrets: Callable[[], Iterable[str]] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 3,
        max_inline_wait: float = 30.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.policy = policy
        self.on_exchange = on_exchange
        self.on_result = on_result
        self._secrets_source = secrets
        self._secrets: list[str] | None = None
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_inline_wait = max_inline_wait
        self.sleep = sleep

    # ------------------------------------------------------------------ credentials

    def secrets(self) -> list[str]:
        if self._secrets is None:
            source = self._secrets_source() if self._secrets_source else ()
            self._secrets = [s for s in source if s and len(s) >= MIN_SECRET_LENGTH]
        return self._secrets

    def _strip(self, headers: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        secrets = self.secrets()
        kept: dict[str, str] = {}
        stripped: list[str] = []
        for name, value in headers.items():
            if any(secret in value for secret in secrets):
                stripped.append(name)
            else:
                kept[name] = value
        return kept, stripped

    def _refuse_secrets_in(self, url: str, params: Any, body: Any) -> None:
        secrets = self.secrets()
        if not secrets:
            return
        texts = [url, repr(params) if params is not None else ""]
        if body is not None:
            texts.append(body.decode("utf-8", "replace") if isinstance(body, bytes) else repr(body))
        for text in texts:
            if any(secret in text for secret in secrets):
                raise Refused("credential", "the request carries a Salesforce credential")

    # ------------------------------------------------------------------ sending

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        timeout: float | None = None,
        follow_redirects: bool = False,
        resend_unanswered: bool = True,
    ) -> requests.Response:
        """Send with the guard, retries and (optionally) checked redirects.

        `resend_unanswered=False` (a non-idempotent request that must not be applied twice):
        a request that went out and got no complete answer (`ResponseLost`) is raised at once,
        not retried; connect errors, 429 and 5xx answers are still retried.
        """
        timeout = min(float(timeout or self.timeout), MAX_TIMEOUT)
        headers, stripped = self._strip(dict(headers or {}))
        self._refuse_secrets_in(url, params, json if json is not None else data)

        def attempt() -> requests.Response:
            try:
                response = self._send_chain(
                    method.upper(),
                    url,
                    params,
                    headers,
                    json,
                    data,
                    timeout,
                    follow_redirects,
                    stripped,
                )
            except ResponseLost as exc:
                if not resend_unanswered:
                    exc.retryable = False  # it may have been applied: never sent again here
                raise
            if response.status_code == 429 or response.status_code >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                kind = RateLimited if response.status_code == 429 else ServerError
                raise kind(
                    f"{urlsplit(response.url or url).hostname} answered {response.status_code}",
                    status=response.status_code,
                    error_code=f"http_{response.status_code}",
                    retry_after=retry_after,
                )
            return response

        return call_with_retries(
            attempt,
            max_attempts=self.max_attempts,
            sleep=self.sleep,
            max_inline_wait=self.max_inline_wait,
            cap=self.max_inline_wait,
        )

    def _send_chain(
        self,
        method: str,
        url: str,
        params: Any,
        headers: dict[str, str],
        json: Any,
        data: Any,
        timeout: float,
        follow: bool,
        stripped: list[str],
    ) -> requests.Response:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send_checked(
                method, current, params, headers, json, data, timeout, stripped
            )
            location = response.headers.get("Location")
            if not follow or response.status_code not in REDIRECT_STATUSES or not location:
                return response
            following = urljoin(response.url or current, location)
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method not in ("GET", "HEAD")
            ):
                method, json, data = "GET", None, None
            if _origin(following) != _origin(current):
                headers = {k: v for k, v in headers.items() if k.lower() not in CROSS_ORIGIN_DROP}
            current, params = following, None
        raise Refused("too_many_redirects", f"more than {MAX_REDIRECTS} redirects from {url}")

    def _send_checked(
        self,
        method: str,
        url: str,
        params: Any,
        headers: dict[str, str],
        json: Any,
        data: Any,
        timeout: float,
        stripped: list[str],
    ) -> requests.Response:
        try:
            target = check_url(url, self.policy)
        except Refused as exc:
            self._count("refused", exc.rule)
            if self.on_exchange is not None:
                self.on_exchange(
                    {"method": method, "url": redact_url(url), "status": None, "error": exc.message}
                )
            raise
        kwargs: dict[str, Any] = {"headers": headers or None, "params": params}
        if json is not None:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data

        def report(summary: dict[str, Any]) -> None:
            if stripped:
                summary["stripped_headers"] = list(stripped)
                recorded = dict(summary.get("request_headers") or {})
                for name in stripped:
                    recorded[name] = STRIPPED_MARK
                summary["request_headers"] = recorded
            summary["host_class"] = target.host_class
            if self.on_exchange is not None:
                self.on_exchange(summary)

        with pinned_session(target.address) as session:
            try:
                response = send(session, method, url, timeout=timeout, on_exchange=report, **kwargs)
            except SalesforceError as exc:
                self._count(target.host_class, exc.error_code)
                raise
        self._count(target.host_class, str(response.status_code))
        return response

    def _count(self, host_class: str, status: str) -> None:
        if self.on_result is not None:
            try:
                self.on_result(host_class, status)
            except Exception:  # noqa: BLE001 - metrics never fail a request
                pass
