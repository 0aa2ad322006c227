"""pydantic's validation errors as the `path: message` lines every 4xx and exit 2 lists.

One formatter for the API's bodies and queries, webhook subscriptions and sync definitions
(behavior definitions add their own hints on top, in `shared.behaviors.definition`):

- the path joins the error's location with `.` for keys and `[i]` for list positions
  (`payload.email`, `events[0]`, `syncs[2].object`); an empty key reads `""`, and the names
  pydantic gives union members and validator functions (`str`, `function-after[...]`) are
  left out; a problem of the whole value reads `body` (or the prefix);
- a missing field reads `required`, an unknown one `unknown field`; any other message is
  pydantic's own, without its `Value error, ` prefix (so a validator's `ValueError` text is
  shown as written);
- the same line is listed once (a union reports each member it tried).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_MEMBER_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def problems_of(exc: ValidationError, prefix: str = "") -> list[str]:
    """Every error of `exc` as `path: message`, paths under `prefix` when given."""
    lines: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        line = f"{error_path(error['loc'], prefix)}: {error_message(error)}"
        if line not in lines:
            lines.append(line)
    return lines


def error_path(loc: tuple[Any, ...] | list[Any], prefix: str = "") -> str:
    """`loc` as `a.b[0].c` (see the module docstring); `body` (or `prefix`) when empty."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _is_member(part):
            name = str(part) or '""'
            path = f"{path}.{name}" if path else name
    return path or "body"


def error_message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def integral(value: Any) -> Any:
    """37.0 as 37 (JSON Schema's `integer` includes it); anything else unchanged.

    For an integer in a JSON body: `Annotated[int, Field(ge=..), BeforeValidator(integral)]`
    (bounds before the validator, so that they reach the JSON Schema); `2.5`, `"37"` and
    `true` are still refused.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_member(part: Any) -> bool:
    # Union members and function validators appear in `loc` by their schema's name.
    return isinstance(part, str) and (
        "[" in part or part in _MEMBER_NAMES or part.startswith(("constrained-", "function-"))
    )
