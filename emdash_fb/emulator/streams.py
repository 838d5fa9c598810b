"""Server-sent event listeners: turning committed changes into stream events.

A ``StreamListener`` belongs to one HTTP connection. The namespace calls
``on_change`` synchronously for every commit (so all listeners see the same
order); the listener turns the change into zero or more SSE frames and queues
them in a bounded buffer. The connection's writer task drains the buffer. A
listener whose buffer overflows (a stalled client) is dropped, never waited
for, so writers and other listeners are never blocked.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from .database import Caller, Change, Namespace, Path
from .paths import is_prefix
from .query import Query
from .values import Json, at_path, children, plain

KEEP_ALIVE = b"event: keep-alive\ndata: null\n\n"
CANCEL = b"event: cancel\ndata: null\n\n"
AUTH_REVOKED = b"event: auth_revoked\ndata: credential is no longer valid\n\n"
DEFAULT_BUFFER_LIMIT = 8 * 1024 * 1024


def frame(event: str, path: Path, data: Json) -> bytes:
    payload = json.dumps(
        {"path": "/" + "/".join(path), "data": data}, separators=(",", ":"), ensure_ascii=False
    )
    return f"event: {event}\ndata: {payload}\n\n".encode()


class StreamListener:
    """One streaming GET: a location, an optional query, who is listening."""

    def __init__(
        self,
        namespace: Namespace,
        path: Path,
        caller: Caller,
        query: Query | None = None,
        *,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        self.namespace = namespace
        self.path = path
        self.caller = caller
        self.query = query if query is not None and not query.is_empty else None
        self.buffer_limit = buffer_limit
        self._frames: deque[bytes] = deque()
        self._buffered = 0
        self._wakeup = asyncio.Event()
        self.closed = False
        self.close_reason: str | None = None
        self._window: dict[str, Json] = {}
        self.on_overflow: Callable[[], None] | None = None  # drops the connection

    # -- lifecycle ---------------------------------------------------------

    def open(self) -> None:
        """Register and queue the initial snapshot in the same step (no gap)."""
        node = at_path(self.namespace.root, self.path)
        if self.query is not None:
            node = self.query.apply(node)
            self._window = dict(children(node))
        # The first snapshot is what the client asked for, however big: it never counts
        # against the slow-consumer limit (only falling behind on live events does).
        self._push(frame("put", (), plain(node)), counted=False)
        self.namespace.add_listener(self)

    def close(self, reason: str, final: bytes | None = None) -> None:
        if self.closed:
            return
        if final is not None:
            self._frames.append(final)
        self.closed = True
        self.close_reason = reason
        self.namespace.remove_listener(self)
        self._wakeup.set()

    async def next_frames(self, timeout: float) -> bytes | None:
        """Everything queued so far, joined; ``b""`` on timeout; ``None`` when done."""
        if not self._frames and not self.closed:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                return b""
        if not self._frames:
            return None
        out = b"".join(self._frames)
        self._frames.clear()
        self._buffered = 0
        return out

    def _push(self, data: bytes, *, counted: bool = True) -> None:
        if self.closed:
            return
        if not counted:
            self._frames.append(data)
            self._wakeup.set()
            return
        self._buffered += len(data)
        if self._buffered > self.buffer_limit:
            # Too far behind: drop the connection; the client reconnects and
            # gets a fresh snapshot instead of an unbounded backlog.
            self._frames.clear()
            self._buffered = 0
            self.close("overflow")
            if self.on_overflow is not None:
                # The writer may be parked in a socket drain on this very
                # client; abort rather than flush what it won't read.
                self.on_overflow()
            return
        self._frames.append(data)
        self._wakeup.set()

    # -- access ------------------------------------------------------------

    def still_allowed(self) -> bool:
        return self.namespace.can_read(self.path, self.caller, self.query)

    def recheck_access(self) -> None:
        if not self.closed and not self.caller.bypasses_rules and not self.still_allowed():
            self.close("cancel", CANCEL)

    def revoke(self) -> None:
        self.close("auth_revoked", AUTH_REVOKED)

    # -- changes -----------------------------------------------------------

    def on_change(self, change: Change) -> None:
        if self.closed:
            return
        frames = self._frames_for(change)
        if not frames:
            return
        if not self.caller.bypasses_rules and not self.still_allowed():
            self.close("cancel", CANCEL)
            return
        for f in frames:
            self._push(f)

    def _frames_for(self, change: Change) -> list[bytes]:
        if self.query is not None:
            return self._query_frames(change)
        base, here = change.base, self.path
        if is_prefix(here, base):
            rel = base[len(here) :]
            if change.kind == "put":
                if at_path(change.old_root, base) == at_path(change.new_root, base):
                    return []
                return [self._cached(change, "put", rel, change.items[0][1])]
            items = {
                "/".join(p): v for p, v in change.items if at_path(change.old_root, base + p) != v
            }
            if not items:
                return []
            key = ("patch", rel)
            if key not in change.encoded:
                change.encoded[key] = frame("patch", rel, {k: plain(v) for k, v in items.items()})
            return [change.encoded[key]]
        if not is_prefix(base, here):
            return []  # the write is beside us
        if change.kind == "patch":
            return self._patch_from_above(change)
        old_here = at_path(change.old_root, here)
        new_here = at_path(change.new_root, here)
        if old_here == new_here:
            return []
        return [self._cached(change, "put", (), new_here, here)]

    def _patch_from_above(self, change: Change) -> list[bytes]:
        """A multi-path write based above us: only the paths that land under us.

        Sending our whole subtree again (a ``put`` at ``/``) would make every
        member re-download the whole session for each root-level update.
        """
        here = self.path
        key: Any = ("patch-above", here)
        if key in change.encoded:
            return [change.encoded[key]] if change.encoded[key] else []
        inside: dict[str, Json] = {}
        replaced_whole = False
        for p, v in change.items:
            full = change.base + p
            if len(full) <= len(here):
                replaced_whole = replaced_whole or is_prefix(full, here)
            elif is_prefix(here, full) and at_path(change.old_root, full) != v:
                inside["/".join(full[len(here) :])] = plain(v)
        if replaced_whole:
            new_here = at_path(change.new_root, here)
            changed = at_path(change.old_root, here) != new_here
            encoded = frame("put", (), plain(new_here)) if changed else b""
        else:
            encoded = frame("patch", (), inside) if inside else b""
        change.encoded[key] = encoded
        return [encoded] if encoded else []

    def _query_frames_inside(self, change: Change) -> list[bytes] | None:
        """A write inside children of a query's location, answered without recomputing the
        window (``None``: recompute it). A child that stays in the window gets the change
        at its own path, as a plain stream would send it (a reply's next chunk is that
        chunk, not the whole reply again); a child entering or leaving it is put whole or
        removed. A limited window is recomputed whenever a child may move in its order."""
        assert self.query is not None
        query, here = self.query, self.path
        if len(change.base) > len(here):
            keys = {change.base[len(here)]}
        else:
            keys = set()
            for p, _ in change.items:
                full = change.base + p
                if is_prefix(full, here):
                    return None  # the location itself (or above it) is replaced
                if len(full) > len(here) and is_prefix(here, full):
                    keys.add(full[len(here)])
        window = self._window
        updated = dict(window)
        for key in keys:
            after = at_path(change.new_root, (*here, key))
            before = window.get(key)
            inside = after is not None and query.in_range(key, after)
            if query.has_limit:
                if before is not None and inside:
                    if query.sort_key(key, before) != query.sort_key(key, after):
                        return None  # it moves in the order: something else may move in
                elif before is None and inside:
                    if not self._limited_admits(updated, key, after):
                        continue  # beyond the window's edge: not ours
                elif before is not None:
                    return None  # it leaves: whatever replaces it must be found
            if inside:
                updated[key] = after
            else:
                updated.pop(key, None)
        out: list[bytes] = []
        inner: list[tuple[Path, Json]] = []  # (path below `here`, value) for staying children
        evicted = sorted(window.keys() - updated.keys() - keys)  # pushed out by a newcomer
        for key in [*evicted, *sorted(keys)]:
            before, after = window.get(key), updated.get(key)
            if before is None and after is None:
                continue
            if before is None or after is None:
                out.append(frame("put", (key,), plain(after)))
                continue
            for p, v in change.items:
                full = change.base + p
                if full[: len(here) + 1] == (*here, key) and at_path(change.old_root, full) != v:
                    inner.append((full[len(here) :], v))
        self._window = updated
        if len(change.base) > len(here) and inner and not out:
            # the plain stream's frame for a write under one child (shared by listeners)
            rel = change.base[len(here) :]
            if change.kind == "put":
                return [self._cached(change, "put", rel, change.items[0][1])]
            key = ("patch", rel)
            if key not in change.encoded:
                items = {
                    "/".join(p): v
                    for p, v in change.items
                    if at_path(change.old_root, change.base + p) != v
                }
                change.encoded[key] = frame("patch", rel, {k: plain(v) for k, v in items.items()})
            return [change.encoded[key]]
        if inner:
            out.insert(0, frame("patch", (), {"/".join(p): plain(v) for p, v in inner}))
        return out

    def _limited_admits(self, window: dict[str, Json], key: str, value: Json) -> bool:
        """Whether a child new to a limited window belongs in it, judged from the window
        alone (it holds exactly the first or last n in range): it does while the window is
        short of n, else it takes the place of the window's edge child (removed here) if
        it sorts beyond it. No rescan of a large collection for each new child."""
        query = self.query
        assert query is not None
        n = query.limit_to_last if query.limit_to_last is not None else query.limit_to_first
        assert n is not None
        if len(window) < n:
            return True
        if n == 0:
            return False
        last = query.limit_to_last is not None
        keyed = [(query.sort_key(k, v), k) for k, v in window.items()]
        edge_rank, edge = min(keyed) if last else max(keyed)
        rank = query.sort_key(key, value)
        if (rank > edge_rank) if last else (rank < edge_rank):
            del window[edge]
            return True
        return False

    def _cached(
        self, change: Change, event: str, rel: Path, value: Json, at: Path | None = None
    ) -> bytes:
        key: Any = (event, rel, at)
        cached = change.encoded.get(key)
        if cached is None:
            cached = frame(event, rel, plain(value))
            change.encoded[key] = cached
        return cached

    def _query_frames(self, change: Change) -> list[bytes]:
        assert self.query is not None
        here = self.path
        touches = is_prefix(here, change.base) or is_prefix(change.base, here)
        if not touches:
            return []
        incremental = self._query_frames_inside(change)
        if incremental is not None:
            return incremental
        new_window = self.query.window(at_path(change.new_root, here))
        old_window = self._window
        if new_window == old_window:
            return []
        self._window = new_window
        out = []
        for key in old_window.keys() - new_window.keys():
            out.append(frame("put", (key,), None))
        for key, value in new_window.items():
            if old_window.get(key) != value:
                out.append(frame("put", (key,), plain(value)))
        return out
