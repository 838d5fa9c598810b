"""Firebase ID tokens as the emulators see them: minting and reading, never verifying.

The official Auth emulator issues *unsigned* JWTs (header ``{"alg":"none"}``,
empty signature); :func:`mint_id_token` produces the same claim set, in the same
order, as its ``generateJwt``. :func:`decode_id_token` turns any Firebase ID
token, unsigned or signed, into the RTDB rules ``auth`` variable. Like the
official emulators it does not check signatures: an emulator is not a security
boundary, and a signed production token can be replayed against it harmlessly.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

DEFAULT_LIFETIME_SECONDS = 3600
# Tolerated difference between the clock that minted a token and ours.
CLOCK_SKEW_SECONDS = 60
MAX_UID_LENGTH = 128

# Claims a caller may not set as custom claims (the list the Auth emulator enforces).
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "aud",
        "sub",
        "iat",
        "exp",
        "nbf",
        "jti",
        "nonce",
        "azp",
        "acr",
        "amr",
        "cnf",
        "auth_time",
        "firebase",
        "at_hash",
        "c_hash",
    }
)

# `firebase.sign_in_provider` -> RTDB's `auth.provider`; anything else passes through.
_RTDB_PROVIDER_NAMES = {
    "google.com": "google",
    "facebook.com": "facebook",
    "github.com": "github",
    "twitter.com": "twitter",
}

_UNSIGNED_HEADER = {"alg": "none", "typ": "JWT"}


class TokenError(ValueError):
    """A token that cannot stand for a user; ``str()`` is a short reason."""


def issuer_for(project_id: str) -> str:
    """The ``iss`` claim of ID tokens for ``project_id``."""
    return f"https://securetoken.google.com/{project_id}"


def encode_unsigned_jwt(payload: dict[str, Any]) -> str:
    """``header.payload.`` with an ``alg: none`` header and an empty signature."""
    return f"{_b64url_json(_UNSIGNED_HEADER)}.{_b64url_json(payload)}."


def read_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of a compact JWT, without looking at its signature."""
    if not isinstance(token, str):
        raise TokenError("not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWT")
    header = _json_segment(parts[0], "header")
    payload = _json_segment(parts[1], "payload")
    return header, payload


def mint_id_token(
    *,
    project_id: str,
    uid: str,
    provider: str,
    claims: dict[str, Any] | None = None,
    email: str | None = None,
    now: float | None = None,
    lifetime: int = DEFAULT_LIFETIME_SECONDS,
    name: str | None = None,
    picture: str | None = None,
    email_verified: bool = False,
    auth_time: float | None = None,
) -> str:
    """An unsigned ID token shaped like the official Auth emulator's.

    ``provider`` is the ``firebase.sign_in_provider`` value (``"anonymous"``,
    ``"password"``, ``"custom"``...). ``claims`` are custom claims, merged at the
    top level below the standard ones; reserved names raise ``ValueError``.
    ``name``/``picture`` are the profile's display name and photo URL;
    ``auth_time`` (when the user last signed in) defaults to ``now``.
    """
    extra = dict(claims or {})
    reserved = sorted(RESERVED_CLAIMS.intersection(extra))
    if reserved:
        raise ValueError(f"reserved claim: {reserved[0]}")
    issued_at = int(time.time() if now is None else now)
    identities: dict[str, list[str]] = {"email": [email]} if email else {}

    payload: dict[str, Any] = {}
    if name is not None:
        payload["name"] = name
    if picture is not None:
        payload["picture"] = picture
    payload.update(extra)
    if email:
        payload["email"] = email
        payload["email_verified"] = email_verified
    if provider == "anonymous":
        payload["provider_id"] = "anonymous"
    payload["auth_time"] = int(issued_at if auth_time is None else auth_time)
    payload["user_id"] = uid
    payload["firebase"] = {"identities": identities, "sign_in_provider": provider}
    payload["iat"] = issued_at
    payload["exp"] = issued_at + lifetime
    payload["aud"] = project_id
    payload["iss"] = issuer_for(project_id)
    payload["sub"] = uid
    return encode_unsigned_jwt(payload)


def decode_id_token(
    token: str, *, now: float | None = None, project_id: str | None = None
) -> dict[str, Any]:
    """The RTDB ``auth`` variable for an ID token: ``{"uid", "provider", "token"}``.

    Accepts unsigned emulator tokens and signed ones alike, without checking any
    signature. Raises :class:`TokenError` for anything that is not a JWT with a
    usable ``sub``, for an expired token (``exp`` older than ``now`` by more
    than :data:`CLOCK_SKEW_SECONDS`), and, when ``project_id`` is given, for a
    token of another project. A token without ``exp`` never expires.
    """
    _, claims = read_jwt(token)
    uid = claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise TokenError("missing sub")
    if len(uid) > MAX_UID_LENGTH:
        raise TokenError("sub too long")
    _check_not_expired(claims, time.time() if now is None else now)
    if project_id is not None:
        _check_project(claims, project_id)
    return {"uid": uid, "provider": rtdb_provider(claims), "token": claims}


def rtdb_provider(claims: dict[str, Any]) -> str:
    """``auth.provider`` as RTDB rules see it, from a token's claims.

    Tokens without a ``firebase.sign_in_provider`` claim (hand-made or legacy
    ones) count as ``"custom"``, the provider of custom-token sign-ins.
    """
    firebase = claims.get("firebase")
    sign_in_provider = firebase.get("sign_in_provider") if isinstance(firebase, dict) else None
    if not isinstance(sign_in_provider, str) or not sign_in_provider:
        return "custom"
    return _RTDB_PROVIDER_NAMES.get(sign_in_provider, sign_in_provider)


def _check_not_expired(claims: dict[str, Any], now: float) -> None:
    if "exp" not in claims:
        return
    expires_at = claims["exp"]
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise TokenError("exp is not a number")
    if expires_at + CLOCK_SKEW_SECONDS < now:
        raise TokenError("expired")


def _check_project(claims: dict[str, Any], project_id: str) -> None:
    if claims.get("aud") != project_id:
        raise TokenError("wrong audience")
    if claims.get("iss") != issuer_for(project_id):
        raise TokenError("wrong issuer")


def _b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"{what} is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise TokenError(f"{what} is not a JSON object")
    return value
