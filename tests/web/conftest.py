"""Fixtures shared by the web tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.models import Account, Service
from shared.runtime import Runtime


@pytest.fixture
def no_worker(settings: Any, _session_workers: dict[str, Any]) -> None:
    """Stop this backend's worker, for tests that look at runs before any worker takes them."""
    proc = _session_workers.get(settings.database_url)
    if proc is not None:
        proc.stop()


@pytest.fixture
def named_account(runtime: Runtime) -> Callable[..., None]:
    """Add an account row (no tokens) under a placeholder service: enough for behaviors to
    name it, never enough to reach Salesforce."""

    def add(name: str = "acme-prod") -> None:
        with runtime.Session.begin() as session:
            service = Service(
                name="s",
                client_id="c",
                client_secret_enc=runtime.crypto.encrypt("x"),
                login_url="https://x",
            )
            session.add(service)
            session.flush()
            session.add(Account(service_id=service.id, name=name))

    return add
