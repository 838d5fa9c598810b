"""RuleDataSnapshot: the ``root``, ``data`` and ``newData`` values of a rule.

A snapshot is a (whole database, path) pair that finds its node lazily, so
building one per rule location costs nothing until a rule looks inside.
"""

from __future__ import annotations

import re
from typing import Any

from ..values import Json, at_path, child, children, get_priority, leaf_value, plain
from .errors import EvalError
from .operators import is_number

_UNRESOLVED: Any = object()
_BAD_KEY_CHAR = re.compile(r"[.#$\[\]]")


class Snapshot:
    __slots__ = ("_root", "path", "_node")

    def __init__(self, root: Json, path: tuple[str, ...], node: Json = _UNRESOLVED) -> None:
        self._root = root
        self.path = path
        self._node = node

    @property
    def node(self) -> Json:
        """The export-form value at this snapshot's path (None when absent)."""
        if self._node is _UNRESOLVED:
            self._node = at_path(self._root, self.path)
        return self._node

    def __repr__(self) -> str:
        return f"Snapshot(/{'/'.join(self.path)})"

    def child(self, relative: str) -> Snapshot:
        """The snapshot at a slash-separated path below this one.

        An empty segment (``''``, ``'a//b'``, a leading or trailing ``/``) or one
        holding ``. # $ [ ]`` is an EvalError, as on Firebase, never skipped.
        """
        keys = relative.split("/")
        for key in keys:
            if not key or _BAD_KEY_CHAR.search(key):
                raise EvalError(f"invalid child path {relative!r}")
        node = self.node
        for key in keys:
            node = child(node, key) if node is not None else None
        return Snapshot(self._root, (*self.path, *keys), node)

    def parent(self) -> Snapshot:
        if not self.path:
            raise EvalError("the root has no parent")
        return Snapshot(self._root, self.path[:-1])

    def val(self) -> Json:
        return plain(self.node)

    def exists(self) -> bool:
        return self.node is not None

    def has_child(self, relative: str) -> bool:
        return self.child(relative).exists()

    def has_children(self, keys: list[str] | None = None) -> bool:
        if keys is None:
            return bool(children(self.node))
        return all(self.has_child(key) for key in keys)

    def get_priority(self) -> Json:
        return get_priority(self.node)

    def is_number(self) -> bool:
        return is_number(leaf_value(self.node))

    def is_string(self) -> bool:
        return type(leaf_value(self.node)) is str

    def is_boolean(self) -> bool:
        return type(leaf_value(self.node)) is bool
