"""SQLAlchemy models, one module per concept; import from here."""

from .accounts import Account, OAuthState
from .admins import Admin, ApiToken, hash_token, new_token
from .base import Base, isoformat, utcnow
from .behaviors import Behavior, BehaviorVersion
from .runs import Attempt, HttpExchange, Run, RunStep
from .schedules import Schedule
from .services import Service
from .syncs import RecordSequence, Sync, SyncedRecord
from .usage import ApiUsageSample
from .webhooks import Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent

__all__ = [
    "Account",
    "Admin",
    "ApiUsageSample",
    "ApiToken",
    "Attempt",
    "Base",
    "Behavior",
    "BehaviorVersion",
    "HttpExchange",
    "OAuthState",
    "RecordSequence",
    "Run",
    "RunStep",
    "Schedule",
    "Service",
    "Sync",
    "SyncedRecord",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEvent",
    "hash_token",
    "isoformat",
    "new_token",
    "utcnow",
]
