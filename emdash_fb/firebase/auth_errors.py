"""Google Identity Toolkit / Secure Token error codes turned into sentences a user can act on.

The Auth REST APIs answer ``{"error": {"code": 400, "message": "EMAIL_EXISTS"}}``,
sometimes with detail after the code (``"WEAK_PASSWORD : Password should be at
least 6 characters"``). :func:`auth_error` maps the code to an :class:`AuthError`
(or a :class:`ConfigError` when the fix is in the configuration, such as a bad
API key or a sign-in method switched off in the console).
"""

from __future__ import annotations

from .errors import AuthError, ConfigError, FirebaseError

_MESSAGES = {
    "EMAIL_EXISTS": "an account with this email already exists (sign in instead)",
    "EMAIL_NOT_FOUND": "no account with this email (create one first)",
    "INVALID_PASSWORD": "wrong password",
    "INVALID_LOGIN_CREDENTIALS": "wrong email or password",
    "INVALID_EMAIL": "that is not a valid email address",
    "MISSING_EMAIL": "an email address is needed",
    "MISSING_PASSWORD": "a password is needed",
    "WEAK_PASSWORD": "password too weak (at least 6 characters)",
    "USER_DISABLED": "this account has been disabled",
    "USER_NOT_FOUND": "this account no longer exists; sign in again",
    "TOKEN_EXPIRED": "the saved sign-in has expired; sign in again",
    "INVALID_REFRESH_TOKEN": "the saved sign-in is no longer valid; sign in again",
    "INVALID_ID_TOKEN": "the saved sign-in is no longer valid; sign in again",
    "CREDENTIAL_TOO_OLD_LOGIN_AGAIN": "please sign in again",
    "TOO_MANY_ATTEMPTS_TRY_LATER": "too many attempts; wait a while and try again",
    "QUOTA_EXCEEDED": "the project's sign-in quota is used up; try again later",
}

# Codes that mean the saved account itself is gone, not that the request was wrong.
ACCOUNT_GONE = frozenset({"USER_NOT_FOUND", "INVALID_REFRESH_TOKEN", "TOKEN_EXPIRED"})


def error_code(message: str) -> str:
    """``"WEAK_PASSWORD : Password should be..."`` -> ``"WEAK_PASSWORD"``."""
    return message.split(" : ", 1)[0].strip()


def auth_error(message: str) -> FirebaseError:
    """The error to raise for an Auth API failure whose error message is ``message``."""
    code = error_code(message)
    if code == "OPERATION_NOT_ALLOWED":
        return ConfigError(
            "this sign-in method is switched off for the project: enable it under "
            "Authentication > Sign-in method in the Firebase console"
        )
    if "API key not valid" in message or code in ("API_KEY_INVALID", "INVALID_API_KEY"):
        return ConfigError("the API key is not valid: check EMDASH_FB_API_KEY or config.json")
    if code == "CONFIGURATION_NOT_FOUND":
        return ConfigError(
            "Firebase Authentication is not set up for this project: open Authentication "
            "in the Firebase console once"
        )
    human = _MESSAGES.get(code)
    if human is None:
        human = message.replace("_", " ").lower() if message.isupper() else message
    return AuthError(f"sign-in failed: {human}", code)
