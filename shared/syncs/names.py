"""The reserved behavior name of sync runs: `sync:<sync id>`.

Behavior names are `[a-z0-9-]`, so a name with a colon can never be a behavior's; runs keep
their NOT NULL `behavior_name` and the worker's execute task sends these to the sync executor.
"""

from __future__ import annotations

SYNC_PREFIX = "sync:"


def behavior_name_for(sync_id: int) -> str:
    return f"{SYNC_PREFIX}{sync_id}"


def is_sync_run(behavior_name: str) -> bool:
    return behavior_name.startswith(SYNC_PREFIX)


def sync_id_of(behavior_name: str) -> int:
    return int(behavior_name[len(SYNC_PREFIX) :])
