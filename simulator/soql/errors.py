"""The one error every SOQL stage raises."""

from __future__ import annotations


class SoqlError(Exception):
    """A query the simulator cannot accept; ``error_code`` is Salesforce's errorCode."""

    def __init__(self, message: str, error_code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
