"""Invite codes: 10 characters of Crockford base32 (50 random bits)."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 10
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


def new_code() -> str:
    """A fresh random code, stored form (upper case, no dash)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def display(code: str) -> str:
    """``ABCDEFGHJK`` -> ``ABCDE-FGHJK`` (how people read it aloud)."""
    return f"{code[:5]}-{code[5:]}" if len(code) == CODE_LENGTH else code


def normalize(typed: str) -> str | None:
    """What a person typed -> stored form, or ``None`` if it can't be a code.

    Case, spaces and dashes don't matter; I/L read as 1 and O as 0, as
    Crockford base32 intends.
    """
    cleaned = "".join(typed.split()).replace("-", "").upper().translate(_CONFUSABLE)
    if len(cleaned) != CODE_LENGTH or any(c not in ALPHABET for c in cleaned):
        return None
    return cleaned
