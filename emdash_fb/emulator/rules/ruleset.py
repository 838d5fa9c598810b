"""RuleSet: a loaded rules file that answers "may this read / write happen?".

Reads and writes follow Firebase: ``.read``/``.write`` cascade from the root
down (any grant wins, deeper rules can't revoke, nothing grants from below);
``.validate`` doesn't cascade and must pass at every non-null location on,
above, and below each written path that has one. A written value's priority is
validated like a child named ``.priority``: by the location's ``$wildcard``
rules, so a record whose ``$other`` refuses unknown keys refuses a priority too.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..values import PRIORITY, Json, child, children, get_priority
from .errors import RulesError
from .evaluate import Context
from .ruletree import RuleNode, build_tree
from .snapshot import Snapshot
from .source import load_source

Path = tuple[str, ...]

_ALLOW_ALL = '{"rules": {".read": true, ".write": true}}'
# What query.* reads as for plain reads and writes: key order, no bounds or limits, as
# live Firebase answers a read without a query. Shared, never mutated: expressions can't assign.
_NO_QUERY: dict[str, Any] = {
    "orderByKey": True,
    "orderByValue": False,
    "orderByPriority": False,
    "orderByChild": None,
    "startAt": None,
    "endAt": None,
    "equalTo": None,
    "limitToFirst": None,
    "limitToLast": None,
}


class RuleSet:
    """Compiled security rules. Build with ``from_text`` or ``allow_all``."""

    def __init__(self, source: str, strict: dict[str, Any], tree: RuleNode) -> None:
        self.source = source
        self._strict = strict
        self._tree = tree
        # Rules someone wrote make queries declare their indexes (production's
        # "Index not defined"); the no-rules default serves them, as the official
        # emulator does.
        self.requires_indexes = True

    @classmethod
    def from_text(cls, text: str) -> RuleSet:
        """Parse and compile a rules file; raises RulesError naming the first problem."""
        try:
            loaded = load_source(text)
            tree = build_tree(loaded)
        except RecursionError:
            raise RulesError("Line 1: The rules are nested too deeply") from None
        return cls(text, loaded.value, tree)

    @classmethod
    def allow_all(cls) -> RuleSet:
        """What an emulator with no rules configured uses: everyone may read and write."""
        rules = cls.from_text(_ALLOW_ALL)
        rules.requires_indexes = False
        return rules

    def strict(self) -> dict[str, Any]:
        """The rules as plain JSON, comments gone (a fresh copy each call)."""
        return copy.deepcopy(self._strict)

    def index_on(self, path: Sequence[str]) -> list[str]:
        """The ``.indexOn`` names declared at the rule node matching ``path``."""
        node: RuleNode | None = self._tree
        for key in path:
            node = node.step(key)
            if node is None:
                return []
        return list(node.index_on)

    def can_read(
        self,
        path: Sequence[str],
        *,
        root: Json,
        auth: dict[str, Any] | None,
        now: int,
        query: dict[str, Any] | None = None,
    ) -> bool:
        """True when some ``.read`` from the root down to ``path`` grants."""
        try:
            return self._can_read(tuple(path), root, auth, now, query)
        except Exception:  # malformed input must deny, never take the server down
            return False

    def can_write(
        self,
        writes: Sequence[tuple[Sequence[str], Json]],
        *,
        old_root: Json,
        new_root: Json,
        auth: dict[str, Any] | None,
        now: int,
    ) -> bool:
        """True when every written path is granted by ``.write`` and all ``.validate`` pass.

        New values are read from ``new_root`` (the database after the whole
        update), so the values in ``writes`` only name what was written.
        """
        try:
            paths = [tuple(path) for path, _ in writes]
            judge = _WriteJudge(self._tree, old_root, new_root, auth, now)
            return all(judge.granted(p) for p in paths) and all(judge.valid(p) for p in paths)
        except Exception:  # malformed input must deny, never take the server down
            return False

    def _can_read(
        self,
        path: Path,
        root: Json,
        auth: dict[str, Any] | None,
        now: int,
        query: dict[str, Any] | None,
    ) -> bool:
        root_snapshot = Snapshot(root, ())
        query_vars = _NO_QUERY if query is None else {**_NO_QUERY, **query}
        wildcards: dict[str, str] = {}
        node: RuleNode | None = self._tree
        value = root
        depth = 0
        while True:
            if node.read is not None:
                ctx = Context(
                    auth=auth,
                    now=now,
                    root=root_snapshot,
                    data=Snapshot(root, path[:depth], value),
                    new_data=None,
                    query=query_vars,
                    wildcards=wildcards,
                )
                if node.read(ctx):
                    return True
            if depth == len(path):
                return False
            key = path[depth]
            node, wildcards = _descend(node, key, wildcards)
            if node is None:
                return False
            value = _child(value, key)
            depth += 1


class _WriteJudge:
    """Judges one write request; remembers which .validate locations already ran."""

    def __init__(
        self,
        tree: RuleNode,
        old_root: Json,
        new_root: Json,
        auth: dict[str, Any] | None,
        now: int,
    ) -> None:
        self.tree = tree
        self.old_root = old_root
        self.new_root = new_root
        self.auth = auth
        self.now = now
        self.root_snapshot = Snapshot(old_root, ())
        self.validated: set[Path] = set()

    def context(self, path: Path, old: Json, new: Json, wildcards: dict[str, str]) -> Context:
        return Context(
            auth=self.auth,
            now=self.now,
            root=self.root_snapshot,
            data=Snapshot(self.old_root, path, old),
            new_data=Snapshot(self.new_root, path, new),
            query=_NO_QUERY,
            wildcards=wildcards,
        )

    def granted(self, path: Path) -> bool:
        """Some ``.write`` from the root down to ``path`` grants."""
        wildcards: dict[str, str] = {}
        node: RuleNode | None = self.tree
        old, new = self.old_root, self.new_root
        for depth in range(len(path) + 1):
            if node.write is not None and node.write(
                self.context(path[:depth], old, new, wildcards)
            ):
                return True
            if depth == len(path):
                return False
            key = path[depth]
            node, wildcards = _descend(node, key, wildcards)
            if node is None:
                return False
            old, new = _child(old, key), _child(new, key)
        return False  # pragma: no cover - the loop always returns

    def valid(self, path: Path) -> bool:
        """Every ``.validate`` above, at, and below ``path`` passes."""
        wildcards: dict[str, str] = {}
        node: RuleNode | None = self.tree
        old, new = self.old_root, self.new_root
        for depth in range(len(path) + 1):
            if new is None:
                return True  # a deleted location and everything below needs no validation
            if not self.check(node, path[:depth], old, new, wildcards):
                return False
            if depth == len(path):
                return self.valid_below(node, path, old, new, wildcards)
            key = path[depth]
            node, wildcards = _descend(node, key, wildcards)
            if node is None or not node.validates:
                return True
            old, new = _child(old, key), _child(new, key)
        return True  # pragma: no cover - the loop always returns

    def valid_below(
        self, node: RuleNode, path: Path, old: Json, new: Json, wildcards: dict[str, str]
    ) -> bool:
        """Every ``.validate`` strictly below ``path`` where the new data exists passes.

        The wildcard's rules also judge the new value's priority, as Firebase does,
        with ``$wildcard`` bound to ``".priority"`` and ``newData`` the priority.
        """
        keys: list[str]
        if node.wildcard_node is not None:
            keys = list(children(new))
            if get_priority(new) is not None:
                keys.append(PRIORITY)
        else:
            keys = [k for k in node.named if _child(new, k) is not None]
        for key in keys:
            below, below_wildcards = _descend(node, key, wildcards)
            if below is None or not below.validates:
                continue
            new_child = _child(new, key)
            if new_child is None:
                continue
            old_child = _child(old, key)
            at = (*path, key)
            if not self.check(below, at, old_child, new_child, below_wildcards):
                return False
            if not self.valid_below(below, at, old_child, new_child, below_wildcards):
                return False
        return True

    def check(
        self, node: RuleNode, path: Path, old: Json, new: Json, wildcards: dict[str, str]
    ) -> bool:
        """Run the ``.validate`` at one location, once per request."""
        if node.validate is None or path in self.validated:
            return True
        self.validated.add(path)
        return node.validate(self.context(path, old, new, wildcards))


def _descend(
    node: RuleNode, key: str, wildcards: dict[str, str]
) -> tuple[RuleNode | None, dict[str, str]]:
    """The child rule node for ``key`` and the wildcards bound there."""
    named = node.named.get(key)
    if named is not None:
        return named, wildcards
    if node.wildcard_node is None:
        return None, wildcards
    return node.wildcard_node, {**wildcards, node.wildcard: key}  # type: ignore[dict-item]


def _child(value: Json, key: str) -> Json:
    """The child ``key`` of an export-form value; ``.priority`` is the value's priority."""
    if value is None:
        return None
    return get_priority(value) if key == PRIORITY else child(value, key)
