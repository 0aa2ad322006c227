"""Syncs: incremental, resumable copies of one Salesforce object of one account.

`definitions` (save-time checks and JSON), `runs` (start a run, one at a time), `executor`
(what a worker does with a `sync:<id>` run), `store` (one page into `synced_records`),
`soql` (the cursor query), `records` (the records API's keyset pages).
"""

from .definitions import DefinitionInvalid, create_sync, describe_fields, sync_to_dict, update_sync
from .executor import execute_sync
from .names import behavior_name_for, is_sync_run
from .runs import SyncRunning, active_run, start_sync_run

__all__ = [
    "DefinitionInvalid",
    "SyncRunning",
    "active_run",
    "behavior_name_for",
    "create_sync",
    "describe_fields",
    "execute_sync",
    "is_sync_run",
    "start_sync_run",
    "sync_to_dict",
    "update_sync",
]
