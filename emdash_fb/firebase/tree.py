"""Plain-JSON trees as RTDB holds them: paths, normal form, copy-on-write edits.

The normal form is what a mirror keeps: objects are ``dict`` with ``str`` keys,
``None`` and empty objects never appear inside a tree (RTDB doesn't store them;
the whole tree may be ``None``), and arrays are objects too: Firebase returns an
object whose keys are dense small integers as a JSON array (with ``null`` in
the gaps), so ``["a", null, "c"]`` becomes ``{"0": "a", "2": "c"}`` and paths
like ``chunks/2`` work the same whether the server sent a list or an object.

:func:`set_at` never mutates its input: it copies only the dicts on the path
it changes and shares the rest, so an old and a new version of a large tree
cost little more than one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

Json = Any


def split_path(path: str) -> tuple[str, ...]:
    """``"/a/b/"`` -> ``("a", "b")``; ``""`` and ``"/"`` are the root."""
    return tuple(part for part in path.split("/") if part)


def url_path(path: str) -> str:
    """A database path as a URL path (segments percent-encoded), without ``.json``."""
    return "/".join(quote(part, safe="") for part in split_path(path))


def normalize(value: Json) -> Json:
    """``value`` in normal form: arrays as string-keyed objects, nulls and empties pruned."""
    if isinstance(value, list):
        items: Any = ((str(i), child) for i, child in enumerate(value))
    elif isinstance(value, dict):
        items = value.items()
    else:
        return value
    out = {}
    for key, child in items:
        child = normalize(child)
        if child is not None:
            out[str(key)] = child
    return out or None


def get_at(root: Json, path: Sequence[str]) -> Json:
    """The node at ``path`` below ``root`` (normal form), or ``None``."""
    node = root
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def set_at(root: Json, path: Sequence[str], value: Json) -> Json:
    """A new tree with ``value`` (normal form, or ``None`` to delete) at ``path``.

    Copies only the dicts along ``path``; everything else is shared with
    ``root``. Objects left empty by a delete are removed, as RTDB does.
    """
    if not path:
        return value
    key = path[0]
    node = root if isinstance(root, dict) else {}
    child = set_at(node.get(key), path[1:], value)
    if child is None and key not in node:
        return root  # deleting something that isn't there
    out = dict(node)
    if child is None:
        del out[key]
    else:
        out[key] = child
    return out or None
