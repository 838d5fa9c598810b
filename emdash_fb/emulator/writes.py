"""Turning a written JSON body into a stored value: validation and server values.

Every check here runs before the tree changes, so a bad write leaves the
database as it was.
"""

from __future__ import annotations

from typing import Any

from .paths import key_problem
from .values import PRIORITY, VALUE, Json, leaf_value

PARSE_ERROR = "Invalid data; couldn't parse JSON object, array, or value."

MAX_DEPTH = 32
MAX_STRING_BYTES = 10 * 1024 * 1024
SERVER_VALUE = ".sv"


class DataError(ValueError):
    """Invalid written data; the message goes into a 400 body."""


def validate(value: Json, depth: int = 0) -> bool:
    """Keys, depth, sizes and server-value shapes of a written value.

    Returns whether it holds a server value (only then is there anything to resolve).
    """
    if depth > MAX_DEPTH:
        raise DataError(f"Invalid data; data exceeds the maximum depth of {MAX_DEPTH}")
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        if isinstance(value, float) and value != value:
            raise DataError("Invalid data; NaN is not a valid value")
        return False
    if isinstance(value, str):
        if len(value) > MAX_STRING_BYTES // 4 and len(value.encode("utf-8")) > MAX_STRING_BYTES:
            raise DataError("Invalid data; strings are limited to 10 MB")
        return False
    if isinstance(value, list):
        has_sv = False
        for item in value:
            has_sv = validate(item, depth + 1) or has_sv
        return has_sv
    if not isinstance(value, dict):
        raise DataError(PARSE_ERROR)
    if SERVER_VALUE in value:
        _check_server_value(value)
        return True
    has_sv = False
    for key, child in value.items():
        if key in (PRIORITY, VALUE):
            if key == PRIORITY and not (
                child is None or isinstance(child, str) or _is_number(child)
            ):
                raise DataError("Invalid data; .priority must be a number or a string")
            if key == VALUE:
                has_sv = validate(child, depth) or has_sv
            continue
        problem = key_problem(key)
        if problem:
            raise DataError(f"Invalid data; {problem}")
        has_sv = validate(child, depth + 1) or has_sv
    return has_sv


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_server_value(value: dict[str, Any]) -> None:
    if len(value) != 1:
        raise DataError("Invalid data; .sv must be the only key in its object")
    sv = value[SERVER_VALUE]
    if sv == "timestamp":
        return
    if isinstance(sv, dict) and set(sv) == {"increment"} and _is_number(sv["increment"]):
        return
    raise DataError(f"Invalid data; unknown server value {sv!r}")


def resolve_server_values(value: Json, current: Json, now_ms: int) -> Json:
    """Replace ``{".sv": ...}`` placeholders; ``current`` is the stored value there."""
    if isinstance(value, list):
        value = {str(i): c for i, c in enumerate(value)}
    if not isinstance(value, dict):
        return value
    if SERVER_VALUE in value:
        sv = value[SERVER_VALUE]
        if sv == "timestamp":
            return now_ms
        delta = sv["increment"]
        base = leaf_value(current)
        if not _is_number(base):
            return delta
        return base + delta
    cur_children = current if isinstance(current, dict) else {}
    return {k: resolve_server_values(c, cur_children.get(k), now_ms) for k, c in value.items()}
