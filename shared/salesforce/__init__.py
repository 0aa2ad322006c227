"""Salesforce: the REST client, its error tree, token lifecycle and API quota."""

from .client import SalesforceClient
from .errors import (
    DailyLimitExceeded,
    HostNotAllowed,
    InvalidGrant,
    InvalidSession,
    NeedsReauth,
    QuotaReserveReached,
    RateLimited,
    RequestError,
    ResponseLost,
    SalesforceError,
    ServerError,
    TokenError,
    TransportError,
)

__all__ = [
    "DailyLimitExceeded",
    "HostNotAllowed",
    "InvalidGrant",
    "InvalidSession",
    "NeedsReauth",
    "QuotaReserveReached",
    "RateLimited",
    "RequestError",
    "ResponseLost",
    "SalesforceClient",
    "SalesforceError",
    "ServerError",
    "TokenError",
    "TransportError",
]
