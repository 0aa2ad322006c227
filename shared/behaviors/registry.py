"""Python behaviors: plain functions registered with `@behavior(...)`.

Modules named in FORCEBOT_BEHAVIOR_MODULES are imported by the web and worker processes;
importing them runs the decorators. The function gets a context with `.inputs`, `.log`,
`.run`, `.salesforce(account=None)`, `.http` and `.fail(message)`, and the same retries and
run records as a definition.

A resumed or retried attempt calls the function again from the start. Its creates,
composite creates and POSTs are journaled by call order and answered from the journal on
the next call (`shared.behaviors.engine.Journal`), so a function must make those calls in
the same order with the same targets every time it runs for the same inputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .definition import NAME_RE, validate_inputs_schema

BehaviorFunction = Callable[[Any], Any]


@dataclass(frozen=True)
class Registered:
    name: str
    function: BehaviorFunction
    inputs: dict[str, Any]
    account: str | None
    max_attempts: int | None
    timeout_seconds: float | None
    description: str | None


_REGISTRY: dict[str, Registered] = {}


def behavior(
    name: str,
    *,
    inputs: dict[str, Any] | None = None,
    account: str | None = None,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    description: str | None = None,
) -> Callable[[BehaviorFunction], BehaviorFunction]:
    """Register `fn(ctx)` as the behavior `name`; the inputs schema is checked now."""
    problems: list[str] = []
    if not NAME_RE.match(name):
        problems.append("name: use lowercase letters, digits and -")
    validate_inputs_schema(inputs or {}, problems)
    if problems:
        raise ValueError(f"behavior {name!r}: " + "; ".join(problems))

    def register(fn: BehaviorFunction) -> BehaviorFunction:
        _REGISTRY[name] = Registered(
            name=name,
            function=fn,
            inputs=dict(inputs or {}),
            account=account,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            description=description or (fn.__doc__ or "").strip().split("\n")[0] or None,
        )
        return fn

    return register


def registered() -> dict[str, Registered]:
    """Every registered Python behavior by name."""
    return dict(_REGISTRY)


def unregister(name: str) -> None:
    """Forget a Python behavior (tests register throwaway ones)."""
    _REGISTRY.pop(name, None)


def load_modules(names: list[str]) -> None:
    """Import the modules of FORCEBOT_BEHAVIOR_MODULES; their decorators register behaviors."""
    for name in names:
        importlib.import_module(name)
