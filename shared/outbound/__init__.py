"""Outbound HTTP to hosts that are not a Salesforce account's: the SSRF guard and its client.

`guard.py` decides what may be reached, `transport.py` pins the connection to the checked
address, `client.py` sends with retries and checked redirects. `for_runtime()` builds the
client that `http.request` with `account: none`, `ctx.http` and webhook delivery use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from shared.crypto import DecryptionError

from .client import OutboundClient
from .guard import AllowList, Policy, Refused, Target, address_rule, check_url

if TYPE_CHECKING:
    from shared.runtime import Runtime
    from shared.salesforce.http import OnExchange

__all__ = [
    "AllowList",
    "OutboundClient",
    "Policy",
    "Refused",
    "Target",
    "address_rule",
    "check_url",
    "for_runtime",
    "known_credentials",
    "policy_for",
    "record_result",
    "results",
]

METRICS_KEY = "forcebot:metrics:outbound"


def policy_for(runtime: Runtime, *, allow_loopback: bool = False) -> Policy:
    """The guard's policy from FORCEBOT_HTTP_ALLOW_HOSTS (plus loopback for webhooks)."""
    return Policy(
        allow=AllowList.parse(runtime.settings.http_allow_hosts), allow_loopback=allow_loopback
    )


def known_credentials(runtime: Runtime) -> list[str]:
    """Every stored Salesforce secret in clear: tokens of all accounts, all client secrets."""
    from shared.models import Account, Service

    stored: list[str | None] = []
    with runtime.Session() as session:
        for access, refresh in session.execute(
            select(Account.access_token_enc, Account.refresh_token_enc)
        ):
            stored += [access, refresh]
        stored += list(session.scalars(select(Service.client_secret_enc)))
    found: list[str] = []
    for ciphertext in stored:
        try:
            if ciphertext:
                found.append(runtime.crypto.decrypt(ciphertext))
        except DecryptionError:
            continue  # a secret no configured key reads cannot be sent by us either
    return found


def record_result(runtime: Runtime, host_class: str, status: str) -> None:
    """Count one outbound request in Redis, where /metrics of any process reads it."""
    runtime.redis.hincrby(METRICS_KEY, f"{host_class}|{status}", 1)


def results(runtime: Runtime) -> dict[tuple[str, str], int]:
    """Outbound request counts by (host class, status)."""
    raw = runtime.redis.hgetall(METRICS_KEY)
    out: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        text = key.decode() if isinstance(key, bytes) else str(key)
        host_class, _, status = text.partition("|")
        out[(host_class, status)] = int(value)
    return out


def for_runtime(
    runtime: Runtime,
    *,
    on_exchange: OnExchange | None = None,
    allow_loopback: bool = False,
    max_attempts: int = 3,
    timeout: float = 30.0,
) -> OutboundClient:
    """The outbound client with the instance's allow-list, credential stripping and metrics."""
    return OutboundClient(
        policy_for(runtime, allow_loopback=allow_loopback),
        on_exchange=on_exchange,
        on_result=lambda host_class, status: record_result(runtime, host_class, status),
        secrets=lambda: known_credentials(runtime),
        max_attempts=max_attempts,
        timeout=timeout,
    )
