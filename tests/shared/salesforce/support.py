"""Helpers for the tests of accounts and their tokens (client, token lifecycle, account tasks)."""

from __future__ import annotations

from typing import Any

from shared.models import Account


def account_row(runtime: Any, account_id: int) -> Account:
    """The account as stored now, detached (its columns loaded)."""
    with runtime.Session() as session:
        account = session.get(Account, account_id)
        assert account is not None
        session.expunge(account)
        return account
