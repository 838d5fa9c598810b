"""The stored value form shared by the tree, queries and the rules engine.

Values are kept in *export form*, the shape `format=export` returns:

- absent: ``None`` (empty objects are never stored; they read as absent);
- a leaf: a JSON primitive (``str``, ``int``, ``float``, ``bool``);
- a leaf with a priority: ``{".value": leaf, ".priority": p}``;
- an object: a non-empty ``dict`` of key -> value, optionally with ``".priority"``.

Priorities are numbers or strings. ``plain()`` turns export form into what a
normal GET returns.
"""

from __future__ import annotations

from typing import Any

Json = Any
PRIORITY = ".priority"
VALUE = ".value"


def is_leaf(v: Json) -> bool:
    """True for a primitive, with or without a priority."""
    return v is not None and (not isinstance(v, dict) or VALUE in v)


def leaf_value(v: Json) -> Json:
    """The primitive of a leaf (``None`` for objects and absent)."""
    if isinstance(v, dict):
        return v.get(VALUE)
    return v


def get_priority(v: Json) -> Json:
    """The node's priority, or ``None``."""
    if isinstance(v, dict):
        return v.get(PRIORITY)
    return None


def children(v: Json) -> dict[str, Json]:
    """The child nodes of an object (empty for leaves and absent)."""
    if not isinstance(v, dict) or VALUE in v:
        return {}
    if PRIORITY in v:
        return {k: c for k, c in v.items() if k != PRIORITY}
    return v


def child(v: Json, key: str) -> Json:
    """One child in export form, or ``None``."""
    if key == PRIORITY:
        return None
    return children(v).get(key)


def at_path(v: Json, path: list[str] | tuple[str, ...]) -> Json:
    """The node at a list of keys below ``v``, or ``None``."""
    for key in path:
        v = child(v, key)
        if v is None:
            return None
    return v


def plain(v: Json) -> Json:
    """Export form -> the JSON a normal GET returns (priorities dropped).

    Like Firebase, an object whose keys are all small non-negative integers,
    filling at least half of ``0..max``, reads back as an array (gaps are null).
    """
    if not isinstance(v, dict):
        return v
    if VALUE in v:
        return v[VALUE]
    out = {k: plain(c) for k, c in v.items() if k != PRIORITY}
    return _as_array(out)


def _as_array(obj: dict[str, Json]) -> Json:
    top = -1
    for key in obj:
        if not key.isdigit() or (len(key) > 1 and key[0] == "0") or not key.isascii():
            return obj
        top = max(top, int(key))
    if top < 0 or top >= 2 * len(obj):
        return obj
    arr: list[Json] = [None] * (top + 1)
    for key, c in obj.items():
        arr[int(key)] = c
    return arr


def normalize(v: Json) -> Json:
    """Written JSON (may carry ``.value``/``.priority``) -> stored export form.

    Nulls and empty objects are pruned, so the result is ``None`` when nothing
    is left. Validation (keys, depth, server values) happens before this.
    """
    if isinstance(v, list):
        v = {str(i): c for i, c in enumerate(v)}
    if not isinstance(v, dict):
        return v
    prio = v.get(PRIORITY)
    if VALUE in v:
        inner = v[VALUE]
        if isinstance(inner, dict | list):
            # {".value": {...}} is treated as the object itself.
            inner = normalize(inner)
            if isinstance(inner, dict) and prio is not None:
                inner = {**inner, PRIORITY: prio}
            return inner
        if inner is None:
            return None
        return {VALUE: inner, PRIORITY: prio} if prio is not None else inner
    out: dict[str, Json] = {}
    for key, c in v.items():
        if key == PRIORITY:
            continue
        n = normalize(c)
        if n is not None:
            out[key] = n
    if not out:
        return None
    if prio is not None:
        out[PRIORITY] = prio
    return out


def set_at(root: Json, path: list[str] | tuple[str, ...], value: Json) -> Json:
    """A new root with ``value`` (export form, or ``None``) placed at ``path``.

    Copies only the dicts on the way down (the rest is shared), prunes objects
    left empty, and never mutates ``root``.
    """
    if not path:
        return value
    key, rest = path[0], path[1:]
    node = root if isinstance(root, dict) and VALUE not in root else {}
    new_child = set_at(node.get(key), rest, value)
    out = dict(node)
    if new_child is None:
        out.pop(key, None)
    else:
        out[key] = new_child
    if not children(out):
        return None
    return out
