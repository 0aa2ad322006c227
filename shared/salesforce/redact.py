"""Exchange summaries with secrets removed: what runs record for each HTTP call."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

BODY_CAP = 8 * 1024
TRUNCATED = "…[truncated]"  # the suffix of a body cut at BODY_CAP
REDACTED = "[redacted]"
SECRET_HEADERS = {"authorization", "cookie", "set-cookie", "proxy-authorization", "x-sfdc-session"}
SECRET_FIELDS = {
    "access_token",
    "refresh_token",
    "client_secret",
    "code",
    "code_verifier",
    "token",
    "password",
    "id_token",
    "signature",
}
_TOKEN_IN_TEXT = re.compile(r"(?i)(bearer\s+)[^\s\"',]+")
# `token=...` inside free text (an error message quoting a URL); not `errorCode=`.
_PAIR_IN_TEXT = re.compile(
    r"(?i)(?<![A-Za-z0-9_])(" + "|".join(sorted(SECRET_FIELDS)) + r")=[^&\s\"',]+"
)


def redact_text(text: str) -> str:
    """Free text (an error message) with bearer tokens and secret `key=value` pairs blanked."""
    text = _TOKEN_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
    return _PAIR_IN_TEXT.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if name.lower() in SECRET_HEADERS:
            scheme = str(value).split(" ", 1)[0] if " " in str(value) else ""
            out[name] = f"{scheme} {REDACTED}".strip()
        else:
            out[name] = str(value)
    return out


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in SECRET_FIELDS else _scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def redact_body(body: Any, content_type: str = "") -> str | None:
    """Text of a request or response body with token fields blanked, capped at 8 KB."""
    if body is None or body == b"" or body == "":
        return None
    if isinstance(body, bytes):
        text = body.decode("utf-8", errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, default=str)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            text = json.dumps(_scrub(json.loads(text)))
        except ValueError:
            pass
    elif "form-urlencoded" in content_type or ("=" in text and " " not in text and "<" not in text):
        pairs = parse_qsl(text, keep_blank_values=True)
        if pairs:
            text = urlencode([(k, REDACTED if k.lower() in SECRET_FIELDS else v) for k, v in pairs])
    text = redact_text(text)
    if len(text.encode("utf-8")) > BODY_CAP:
        text = text.encode("utf-8")[:BODY_CAP].decode("utf-8", errors="ignore") + TRUNCATED
    return text


def redact_url(url: str) -> str:
    """A URL with secret query parameters blanked."""
    if "?" not in url:
        return url
    base, query = url.split("?", 1)
    pairs = parse_qsl(query, keep_blank_values=True)
    return (
        base
        + "?"
        + urlencode([(k, REDACTED if k.lower() in SECRET_FIELDS else v) for k, v in pairs])
    )
