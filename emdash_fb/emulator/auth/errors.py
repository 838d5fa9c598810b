"""Errors of the Auth emulator, in Google's JSON error shape.

Every failure an operation can report is an :class:`AuthApiError`; the HTTP
layer renders it as ``{"error": {"code", "message", "errors": [...], "status"?}}``,
byte-for-byte the shape the official emulator and Google send.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class AuthApiError(Exception):
    """An API error: HTTP ``code``, Google ``message`` (e.g. ``EMAIL_EXISTS``)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        status: str | None = None,
        reason: str = "invalid",
        domain: str | None = "global",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason
        self.domain = domain

    def to_json(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"message": self.message, "reason": self.reason}
        if self.domain:
            detail["domain"] = self.domain
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [detail]}
        if self.status:
            error["status"] = self.status
        return {"error": error}


def bad_request(message: str) -> AuthApiError:
    """The common case: 400 with a Google error code such as ``INVALID_PASSWORD``."""
    return AuthApiError(400, message)


def invalid_argument(detail: str, *, reason: str = "invalid") -> AuthApiError:
    """A request body that does not fit the API schema (or is not JSON at all)."""
    return AuthApiError(
        400, f"Invalid JSON payload received. {detail}", status="INVALID_ARGUMENT", reason=reason
    )


def missing_api_key() -> AuthApiError:
    return AuthApiError(
        403,
        "The request is missing a valid API key.",
        status="PERMISSION_DENIED",
        reason="forbidden",
    )


def not_found() -> AuthApiError:
    return AuthApiError(404, "Not Found", status="NOT_FOUND", reason="notFound", domain=None)


def not_implemented(message: str) -> AuthApiError:
    return AuthApiError(501, message, status="NOT_IMPLEMENTED", reason="unimplemented", domain=None)


def internal_error(message: str) -> AuthApiError:
    return AuthApiError(500, message, status="INTERNAL", reason="internal", domain=None)


def require(condition: object, message: str) -> None:
    """Raise ``bad_request(message)`` unless ``condition`` holds."""
    if not condition:
        raise bad_request(message)


def required(value: T | None, message: str) -> T:
    """``value`` itself, or ``bad_request(message)`` when it is missing or empty."""
    if not value:
        raise bad_request(message)
    return value
