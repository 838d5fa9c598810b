"""Database paths and keys: parsing URL paths and validating keys as RTDB does."""

from __future__ import annotations

import re
from urllib.parse import unquote

MAX_KEY_BYTES = 768
_FORBIDDEN = set(".$#[]/")
_BAD_KEY_CHAR = re.compile(r"[.$#\[\]/\x00-\x1f\x7f]")  # forbidden or control


class PathError(ValueError):
    """A bad path or key; the message goes into a 400 body."""


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid RTDB key, or ``None`` when it is."""
    if key == "":
        return "keys must not be empty"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"key longer than {MAX_KEY_BYTES} bytes"
    bad = _BAD_KEY_CHAR.search(key)
    if bad is None:
        return None
    ch = bad.group()
    if ch in _FORBIDDEN:
        return f'key "{key}" contains "{ch}" (keys can\'t contain . $ # [ ] or /)'
    return f"key {key!r} contains a control character"


def split_path(raw: str) -> list[str]:
    """``"/a/b/"`` -> ``["a", "b"]``; segments are percent-decoded and validated."""
    segments = [unquote(s) for s in raw.split("/") if s != ""]
    for seg in segments:
        problem = key_problem(seg)
        if problem:
            raise PathError(f"Invalid path: {problem}")
    return segments


def split_relative(raw: str) -> list[str]:
    """A multi-path update key (``"a/b"``) -> segments, validated, no decoding."""
    segments = [s for s in raw.split("/") if s != ""]
    for seg in segments:
        problem = key_problem(seg)
        if problem:
            raise PathError(f"Invalid data; {problem}")
    return segments


def is_prefix(prefix: list[str] | tuple[str, ...], path: list[str] | tuple[str, ...]) -> bool:
    """True when ``prefix`` is ``path`` or one of its ancestors."""
    return len(prefix) <= len(path) and tuple(path[: len(prefix)]) == tuple(prefix)
