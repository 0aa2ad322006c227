"""Salesforce-style record ids: 15 case-sensitive characters plus a 3-character checksum."""

from __future__ import annotations

import itertools
import secrets
import threading

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Lead": "00Q",
    "Case": "500",
    "Opportunity": "006",
    "Task": "00T",
    "Organization": "00D",
    "User": "005",
}


def checksum(id15: str) -> str:
    """Salesforce's case-safe suffix: one character per 5-character chunk, built from a bitmap
    of which characters in the chunk are upper-case letters (bit i for position i)."""
    if len(id15) != 15:
        raise ValueError("checksum needs a 15-character id")
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_CHARS[bits])
    return "".join(out)


def to18(id15: str) -> str:
    """Convert a 15-character id to its 18-character form (an 18-character id is returned as is,
    after checking its suffix). Raises ValueError on malformed ids."""
    if len(id15) == 18:
        if checksum(id15[:15]) != id15[15:].upper():
            raise ValueError(f"bad id checksum: {id15}")
        return id15[:15] + checksum(id15[:15])
    if len(id15) != 15 or any(c not in BASE62 for c in id15):
        raise ValueError(f"malformed id: {id15}")
    return id15 + checksum(id15)


def is_valid_id(value: object) -> bool:
    if not isinstance(value, str) or len(value) not in (15, 18):
        return False
    if any(c not in BASE62 for c in value):
        return False
    try:
        to18(value)
    except ValueError:
        return False
    return True


def _base62(n: int, width: int) -> str:
    chars = []
    while n:
        n, r = divmod(n, 62)
        chars.append(BASE62[r])
    s = "".join(reversed(chars)) or "0"
    if len(s) > width:
        raise OverflowError("id counter exhausted")
    return s.rjust(width, "0")


class IdGenerator:
    """Generates 18-character ids whose string order follows creation order."""

    def __init__(self, pod: str = "8d") -> None:
        self._pod = pod
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            n = next(self._counter)
        id15 = prefix + self._pod + "0" + _base62(n, 9)
        return id15 + checksum(id15)


def random_chars(n: int) -> str:
    """``n`` random base-62 characters (token and locator material)."""
    return "".join(secrets.choice(BASE62) for _ in range(n))
