"""Refresh tokens: self-describing records, in the official emulator's format.

A refresh token is base64 of a JSON record naming the user, the sign-in
provider and the custom claims to put in every ID token it yields. Nothing is
stored server-side, so tokens survive an export/import, and tokens issued by
the official emulator for the same project work here too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

_MARKER_KEY = "_AuthEmulatorRefreshToken"
_MARKER_VALUE = "DO NOT MODIFY"


@dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token stands for."""

    local_id: str
    provider: str
    project_id: str
    extra_claims: dict[str, Any] = field(default_factory=dict)


def encode_refresh_token(grant: RefreshGrant) -> str:
    record = {
        _MARKER_KEY: _MARKER_VALUE,
        "localId": grant.local_id,
        "provider": grant.provider,
        "extraClaims": grant.extra_claims,
        "projectId": grant.project_id,
    }
    return base64.b64encode(json.dumps(record, separators=(",", ":")).encode()).decode("ascii")


def decode_refresh_token(token: str) -> RefreshGrant:
    """The grant behind ``token``; ``INVALID_REFRESH_TOKEN`` if it is not one of ours."""
    try:
        # Node's Buffer accepts both alphabets, so the official emulator does too.
        standard = token.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4))
        record = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("INVALID_REFRESH_TOKEN") from exc
    if not isinstance(record, dict) or not record.get(_MARKER_KEY):
        raise bad_request("INVALID_REFRESH_TOKEN")
    local_id, provider = record.get("localId"), record.get("provider")
    project_id, extra_claims = record.get("projectId"), record.get("extraClaims") or {}
    if not all(isinstance(value, str) for value in (local_id, provider, project_id)):
        raise bad_request("INVALID_REFRESH_TOKEN")
    if not isinstance(extra_claims, dict):
        raise bad_request("INVALID_REFRESH_TOKEN")
    return RefreshGrant(local_id, provider, project_id, extra_claims)
