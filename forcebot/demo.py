"""Demo mode: a simulated org, a service and a linked account so the whole flow works."""

from __future__ import annotations

from collections.abc import Iterator

from shared.config import Settings


def setup_demo(settings: Settings, simulator_url: str) -> Iterator[str]:
    """Register the demo app at the simulator and configure it here (idempotent)."""
    yield f"Salesforce simulator: {simulator_url} (demo org)"
