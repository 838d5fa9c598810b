"""Custom tokens: what a server mints so that a user can sign in as a given uid.

Nothing is verified, as in the official emulator. Accepted forms:

- a JWT whose ``aud`` is the Identity Toolkit audience, signed or not: what
  firebase-admin's ``create_custom_token`` returns (unsigned when
  ``FIREBASE_AUTH_EMULATOR_HOST`` is set, RS256 otherwise);
- the official emulator's shortcut, the bare JSON payload: ``{"uid": "alice"}``.

The payload names the user in ``uid`` (or ``user_id``) and may carry custom
claims under ``claims``.
"""

from __future__ import annotations

import json
from typing import Any

from ..idtoken import RESERVED_CLAIMS, TokenError, read_jwt
from .errors import bad_request, require, required

CUSTOM_TOKEN_AUDIENCE = (
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
)


def read_custom_token(token: str) -> tuple[str, dict[str, Any]]:
    """The uid and custom claims a custom token grants, or the API error for it."""
    payload = _payload(token)
    uid = _primitive_as_string(payload.get("uid"))
    if uid is None:
        uid = _primitive_as_string(payload.get("user_id"))
    uid = required(uid, "MISSING_IDENTIFIER")
    claims = _checked_claims(payload["claims"]) if "claims" in payload else {}
    return uid, claims


def _payload(token: str) -> dict[str, Any]:
    if token.startswith("{"):
        try:
            payload = json.loads(token)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise bad_request(
                "INVALID_CUSTOM_TOKEN : ((Auth Emulator only accepts strict JSON or JWTs as fake custom tokens.))"
            )
        return payload
    try:
        _, payload = read_jwt(token)
    except TokenError as exc:
        raise bad_request("INVALID_CUSTOM_TOKEN : Invalid assertion format") from exc
    audience = payload.get("aud")
    require(
        audience == CUSTOM_TOKEN_AUDIENCE,
        f"INVALID_CUSTOM_TOKEN : ((Invalid aud (audience): {audience} "
        "Note: Firebase ID Tokens / third-party tokens cannot be used with signInWithCustomToken.))",
    )
    return payload


def _primitive_as_string(value: Any) -> str | None:
    """A uid given as a number or boolean counts, spelled as JavaScript would."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _checked_claims(claims: Any) -> dict[str, Any]:
    require(isinstance(claims, dict), "INVALID_CLAIMS")
    for name in sorted(RESERVED_CLAIMS):
        require(name not in claims, f"FORBIDDEN_CLAIM : {name}")
    return dict(claims)
