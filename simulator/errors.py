"""The two error shapes the simulator answers with: REST errors and OAuth errors."""

from __future__ import annotations

from typing import Any


class SfError(Exception):
    """A REST error as Salesforce sends it: ``[{"message", "errorCode", "fields"?}]``."""

    def __init__(
        self, status: int, error_code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


class OAuthError(Exception):
    """An OAuth endpoint error: HTTP 400 ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
