"""The error type every route raises, rendered as ``{"code", "message", "exceptionType"}``."""

from __future__ import annotations

from typing import Any

_EXCEPTION_TYPES = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    405: "MethodNotAllowedException",
    413: "PayloadTooLargeException",
    429: "TooManyRequestsException",
    500: "InternalServerErrorException",
    503: "ServiceUnavailableException",
}


def exception_type_for(status: int) -> str:
    """Name of the ``exceptionType`` reported for ``status``."""
    return _EXCEPTION_TYPES.get(status, "HttpException")


def error_body(status: int, message: str, exception_type: str | None = None) -> dict[str, Any]:
    """The JSON error body shared by every error response."""
    return {
        "code": status,
        "message": message,
        "exceptionType": exception_type or exception_type_for(status),
    }


class ApiError(Exception):
    """An error with an HTTP status; the app turns it into the standard error body.

    :param status: HTTP status code.
    :param message: Human-readable message shown by clients.
    :param exception_type: Overrides the default ``exceptionType`` for the status.
    :param headers: Extra response headers (e.g. ``WWW-Authenticate``, ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        exception_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.exception_type = exception_type or exception_type_for(status)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error body."""
        return error_body(self.status, self.message, self.exception_type)
