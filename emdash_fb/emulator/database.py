"""The database model: namespaces holding a tree, a rule set and listeners.

All state changes happen here, on the server's event loop, one at a time:
every write is atomic and every listener is told about changes in the same
order. Protocol details (HTTP, SSE framing) live in rtdb_http.py/streams.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .paths import PathError, is_prefix, split_relative
from .pushid import PushIdGenerator
from .query import Query
from .rules import RuleSet
from .values import Json, at_path, normalize, plain, set_at
from .writes import PARSE_ERROR, DataError, resolve_server_values, validate

Path = tuple[str, ...]
NULL_ETAG = "null_etag"
ACCESS_SWEEP_DELAY = 0.05  # seconds


class PermissionDenied(Exception):
    """The rules refused the operation."""


class IndexNotDefined(Exception):
    """A child or value query on a location without a matching ``.indexOn``."""

    def __init__(self, index: str, path: Path) -> None:
        super().__init__(
            f'Index not defined, add ".indexOn": "{index}", for path "/{"/".join(path)}", to the rules'
        )


class PreconditionFailed(Exception):
    """An ``if-match`` ETag did not match; carries the current value."""

    def __init__(self, current: Json) -> None:
        super().__init__("ETag mismatch")
        self.current = current


@dataclass(frozen=True)
class Caller:
    """Who is asking: the owner (bypasses rules) or an ``auth`` value for the rules."""

    admin: bool = False
    auth: dict[str, Any] | None = None
    expires_at: float | None = None  # seconds since epoch, for ID tokens

    @property
    def bypasses_rules(self) -> bool:
        return self.admin


@dataclass
class Change:
    """One committed write, as listeners need it.

    ``kind`` is ``put`` (one path replaced) or ``patch`` (several children of
    ``base`` replaced). ``items`` holds (path relative to base, new value).
    """

    kind: str
    base: Path
    items: list[tuple[Path, Json]]
    old_root: Json
    new_root: Json
    now_ms: int
    encoded: dict[Any, bytes] = field(default_factory=dict)  # shared across listeners


class Listener(Protocol):
    path: Path

    def on_change(self, change: Change) -> None: ...
    def recheck_access(self) -> None: ...


def etag_of(value: Json) -> str:
    """An opaque ETag for a plain value; absent values have Firebase's ``null_etag``."""
    if value is None:
        return NULL_ETAG
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Namespace:
    """One database instance (``?ns=``): its data, its rules, its listeners."""

    def __init__(
        self,
        name: str,
        rules: RuleSet,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.rules = rules
        self.root: Json = None
        self.listeners: set[Listener] = set()
        self._clock = clock
        self._push_id = PushIdGenerator()
        self._sweep_pending = False

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- reads -------------------------------------------------------------

    def check_read(self, path: Path, caller: Caller, query: Query | None = None) -> None:
        if query is not None and not query.is_empty and self.rules.requires_indexes:
            index = query.needs_index()
            if index is not None and index not in self.rules.index_on(path):
                raise IndexNotDefined(index, path)
        if caller.bypasses_rules:
            return
        if not self.can_read(path, caller, query):
            raise PermissionDenied()

    def can_read(self, path: Path, caller: Caller, query: Query | None = None) -> bool:
        if caller.bypasses_rules:
            return True
        return self.rules.can_read(
            path,
            root=self.root,
            auth=caller.auth,
            now=self.now_ms(),
            query=query.rules_view() if query is not None and not query.is_empty else None,
        )

    def get(self, path: Path, caller: Caller, query: Query | None = None) -> Json:
        """The value at ``path`` in export form (query applied), after the read check."""
        self.check_read(path, caller, query)
        node = at_path(self.root, path)
        if query is not None and not query.is_empty:
            node = query.apply(node)
        return node

    # -- writes ------------------------------------------------------------

    def set(self, path: Path, value: Json, caller: Caller, if_match: str | None = None) -> Json:
        """PUT: replace the value at ``path``. Returns the stored value, plain."""
        has_sv = validate(value)
        now = self.now_ms()
        old = at_path(self.root, path)
        if if_match is not None and etag_of(plain(old)) != if_match:
            self.check_read(path, caller)
            raise PreconditionFailed(plain(old))
        new = normalize(resolve_server_values(value, old, now) if has_sv else value)
        new_root = set_at(self.root, path, new)
        self._authorize_write(caller, [(path, new)], new_root, now)
        self._commit(Change("put", path, [((), new)], self.root, new_root, now))
        return plain(new)

    def update(self, path: Path, updates: Json, caller: Caller) -> Json:
        """PATCH: atomically replace each named child (slash paths allowed)."""
        if not isinstance(updates, dict):
            raise DataError(PARSE_ERROR)
        now = self.now_ms()
        items: list[tuple[Path, Json, bool]] = []
        for key, value in updates.items():
            try:
                rel = tuple(split_relative(key))
            except PathError as exc:
                raise DataError(str(exc)) from None
            if not rel:
                raise DataError("Invalid data; empty key in update")
            items.append((rel, value, validate(value, len(path) + len(rel))))
        rels = sorted(rel for rel, _, _ in items)
        for a, b in zip(rels, rels[1:], strict=False):
            if is_prefix(a, b):
                raise DataError(
                    f"Invalid data; path /{'/'.join(a)} is an ancestor of /{'/'.join(b)} in the same update"
                )
        new_root = self.root
        resolved: list[tuple[Path, Json]] = []
        for rel, value, has_sv in items:
            full = path + rel
            if has_sv:
                value = resolve_server_values(value, at_path(self.root, full), now)
            new = normalize(value)
            new_root = set_at(new_root, full, new)
            resolved.append((rel, new))
        self._authorize_write(caller, [(path + rel, v) for rel, v in resolved], new_root, now)
        if resolved:
            self._commit(Change("patch", path, resolved, self.root, new_root, now))
        return {"/".join(rel): plain(v) for rel, v in resolved}

    def push(self, path: Path, value: Json, caller: Caller) -> str:
        """POST: store ``value`` under a new push id; returns the id."""
        name = self._push_id(self.now_ms())
        self.set(path + (name,), value, caller)
        return name

    def delete(self, path: Path, caller: Caller, if_match: str | None = None) -> None:
        self.set(path, None, caller, if_match)

    def etag(self, path: Path) -> str:
        return etag_of(plain(at_path(self.root, path)))

    def replace_all(self, root: Json) -> None:
        """Load a whole tree (import); listeners see a put at the root."""
        new_root = normalize(root)
        self._commit(Change("put", (), [((), new_root)], self.root, new_root, self.now_ms()))

    def _authorize_write(
        self, caller: Caller, writes: list[tuple[Path, Json]], new_root: Json, now: int
    ) -> None:
        if caller.bypasses_rules:
            return
        if not self.rules.can_write(
            writes, old_root=self.root, new_root=new_root, auth=caller.auth, now=now
        ):
            raise PermissionDenied()

    def _commit(self, change: Change) -> None:
        self.root = change.new_root
        for listener in list(self.listeners):
            listener.on_change(change)
        self._schedule_access_sweep()

    def _schedule_access_sweep(self) -> None:
        # A write anywhere can revoke read access elsewhere (rules read `root`).
        # Every listener is re-checked shortly after, once per burst of writes
        # (those that got an event were also checked before it was sent).
        if self._sweep_pending or not self.listeners:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._sweep_access()
            return
        self._sweep_pending = True
        loop.call_later(ACCESS_SWEEP_DELAY, self._sweep_access)

    def _sweep_access(self) -> None:
        self._sweep_pending = False
        for listener in list(self.listeners):
            listener.recheck_access()

    # -- rules and listeners -----------------------------------------------

    def set_rules(self, rules: RuleSet) -> None:
        self.rules = rules
        for listener in list(self.listeners):
            listener.recheck_access()

    def add_listener(self, listener: Listener) -> None:
        self.listeners.add(listener)

    def remove_listener(self, listener: Listener) -> None:
        self.listeners.discard(listener)


class Database:
    """All namespaces of one emulator, created on first use."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        default_namespace: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = rules
        self.default_namespace = default_namespace
        self._clock = clock
        self.namespaces: dict[str, Namespace] = {}

    def namespace(self, name: str | None) -> Namespace:
        key = name or self.default_namespace
        ns = self.namespaces.get(key)
        if ns is None:
            ns = Namespace(key, self.rules, clock=self._clock)
            self.namespaces[key] = ns
        return ns

    def set_rules_everywhere(self, rules: RuleSet) -> None:
        """A new rules file applies to every namespace (the file is shared)."""
        self.rules = rules
        for ns in self.namespaces.values():
            ns.set_rules(rules)
