"""The errors every Firebase call in emdash-fb can raise, worded for the person at the terminal.

``str(error)`` is always one line that says what went wrong and, where there
is one, what to do about it; the CLI prints it as is. Callers that need more
than the text branch on the class: a :class:`PermissionDenied` means "you are
not allowed", a :class:`NetworkError` means "try again later", a
:class:`RequestError` is a request the server refused for another reason
(usually a bug on our side).
"""

from __future__ import annotations


class FirebaseError(Exception):
    """Base class: ``str()`` is one clear line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(FirebaseError):
    """The Firebase target is missing or badly configured; the text names what to set."""


class AuthError(FirebaseError):
    """Signing in or refreshing the sign-in failed; the text is the server's reason, humanised.

    ``code`` is the server's error code (``"INVALID_PASSWORD"``...) when there is one.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermissionDenied(FirebaseError):
    """The database refused the request under its security rules (HTTP 401)."""


class NetworkError(FirebaseError):
    """The server could not be reached, timed out, or kept failing (5xx) after retries."""


class RequestError(FirebaseError):
    """The server refused the request (a 4xx other than 401); ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def __str__(self) -> str:
        return f"the database refused the request ({self.status}): {self.message}"
