"""The one error every SOQL stage raises, and Salesforce's way of showing where it is."""

from __future__ import annotations


class SoqlError(Exception):
    """A query the simulator cannot accept; ``error_code`` is Salesforce's errorCode and ``pos``
    the 0-based offset in the query text it points at (None when it points nowhere)."""

    def __init__(
        self, message: str, error_code: str = "MALFORMED_QUERY", pos: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.pos = pos

    def salesforce_message(self, text: str) -> str:
        """The message as Salesforce words it: the query line, a caret under the offending
        token, ``ERROR at Row:R:Column:C`` (both 1-based) and the description."""
        if self.pos is None:
            return self.message
        pos = max(0, min(self.pos, len(text)))
        row = text.count("\n", 0, pos) + 1
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        line = text[line_start : line_end if line_end != -1 else len(text)]
        col = pos - line_start + 1
        return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{self.message}"
