"""Following one database path live: one stream, a local mirror tree, updates.

A :class:`Listener` opens an RTDB event stream at its path, as the signed-in
user (an :class:`~.identity.Auth`) or as anything else that can present
:class:`StreamCredentials` (a runner: ``admin.RunnerStreamCredentials``),
keeps a mirror of the data there (normal form, see ``tree.py``) and
calls ``on_update`` with an :class:`Update` for every change. Consumers derive
their events by diffing ``Update.old`` against ``Update.new``; both are
plain-JSON trees that share every unchanged branch (copy-on-write), so holding
both is cheap. Treat them as immutable.

Connections come and go; the mirror does not miss or repeat anything:

- The first event on every connection is the full snapshot. It replaces the
  mirror in one ``Update(resync=True)`` from the old mirror to the new
  snapshot, so writes made while disconnected show up exactly once, in that
  diff. (The very first one has ``old=None``.)
- Any loss of the stream (network error, the server ending it, no bytes for
  2.5 keep-alive intervals, a 5xx) reconnects with capped, jittered
  exponential backoff (0.25 s doubling to 2 s by default, so a view is back
  within about 2 s of the network); the backoff returns to its floor as soon
  as a connection delivers its first event. The keep-alive interval is
  learned from the stream itself (the gap before each keep-alive), so a
  stalled connection is noticed after 2.5 of the server's real intervals,
  not a fixed guess.
- ``auth_revoked`` (the ID token expired or was revoked) reconnects at once
  with a newly issued token. To avoid even that, a fresh token is fetched
  ``token_margin`` seconds before the current one expires (while the old
  stream keeps delivering), and the stream is reopened with it; the status
  stays ``"live"`` throughout.
- ``cancel`` (read access lost), or a 401 at open that a new token does not
  fix, ends the listener with status ``"cancelled"``.

A listener may follow a *window* of a collection whose children are never
deleted (a session's transcript, its turns): ``query`` gives each connection
its query parameters from the mirror so far (``None`` on the first), so a
reconnect asks only for what may have changed (``startAt`` the newest it
has); with ``windowed`` a re-sync's snapshot is merged into the mirror child
by child (what lies outside the new window stays; ``trim`` drops what the
window never held, such as children older than it began with), and a child
leaving the window (a ``limitToLast`` eviction) is not a deletion.

Statuses: ``"connecting"``, ``"live"``, ``"reconnecting"``, then ``"cancelled"``
or ``"stopped"`` when :meth:`Listener.run` returns. Exceptions raised by
``on_update``/``on_status`` propagate out of ``run()`` (a consumer bug should
be seen, not retried), as do :class:`AuthError`, :class:`ConfigError` and
:class:`RequestError` (a 4xx other than 401), which no retry can fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .credentials import Identity
from .errors import FirebaseError, NetworkError, PermissionDenied
from .identity import Auth
from .sse import open_stream
from .target import Target
from .tree import normalize, set_at, split_path, url_path

T = TypeVar("T")

KEEP_ALIVE_SECONDS = 30.0  # how often RTDB sends keep-alive events (until the stream says)
SILENCE_FACTOR = 2.5  # a stream silent for this many keep-alive intervals is dead
MIN_SILENCE_SECONDS = 1.0  # ... but never less than this
KEEP_ALIVE_SAMPLES = 5
MIN_KEEP_ALIVE_GAP = 0.5
CONNECT_SECONDS = 10.0  # a connection attempt that takes longer is given up
REFRESH_RETRY_SECONDS = 15.0  # retry a failed early refresh this often, keeping the old stream


@dataclass(frozen=True)
class Update:
    old: Any  # the mirror before (plain JSON, treat as immutable)
    new: Any  # the mirror after
    resync: bool  # True when this update is a full re-sync after (re)connect


@dataclass(frozen=True)
class Grant:
    """What one stream connection presents: query parameters and headers, valid until
    ``expires_at`` (epoch seconds). ``token`` tells two grants apart (a refreshed one)."""

    token: str
    expires_at: float
    params: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)


class StreamCredentials(Protocol):
    """Where a listener's credentials come from (blocking calls; run in a thread)."""

    def current(self, *, min_valid: float | None = None) -> Grant:
        """A grant valid for ``min_valid`` more seconds (a default margin if ``None``)."""
        ...

    def refresh(self, replacing: str | None = None) -> Grant:
        """A newly issued grant, e.g. after the server refused or revoked ``replacing``."""
        ...


class UserCredentials:
    """A signed-in user's ID token, as ``?auth=`` (what clients and REST use)."""

    def __init__(self, auth: Auth) -> None:
        self.auth = auth

    @staticmethod
    def _grant(ident: Identity) -> Grant:
        return Grant(ident.id_token, ident.expires_at, {"auth": ident.id_token})

    def current(self, *, min_valid: float | None = None) -> Grant:
        return self._grant(self.auth.current(min_valid=min_valid))

    def refresh(self, replacing: str | None = None) -> Grant:
        return self._grant(self.auth.refresh(replacing))


class _Cancelled(Exception):
    """The server sent ``cancel``: this user may no longer read the path."""


class _Revoked(Exception):
    """The server sent ``auth_revoked``: the token is no longer accepted."""


class Listener:
    """Follows one path with one stream, keeps a local mirror tree, reports updates."""

    def __init__(
        self,
        target: Target | str,
        auth: Auth | StreamCredentials,
        path: str,
        on_update: Callable[[Update], None],
        on_status: Callable[[str], None] | None = None,
        *,
        keep_alive: float = KEEP_ALIVE_SECONDS,
        backoff_initial: float = 0.25,
        backoff_max: float = 2.0,
        token_margin: float = 120.0,
        params: Mapping[str, str] | None = None,
        query: Callable[[Any], Mapping[str, str]] | None = None,
        windowed: bool = False,
        trim: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """``target``: a Target, or the database's base URL; ``params``: query parameters
        for the stream besides the credentials' (a query, ``ns``)."""
        base = target if isinstance(target, str) else target.database_url
        self.credentials: StreamCredentials = (
            UserCredentials(auth) if isinstance(auth, Auth) else auth
        )
        self.path = "/".join(split_path(path))
        self.on_update = on_update
        self.on_status = on_status
        self.keep_alive = keep_alive  # until learned from the stream (keep-alive to keep-alive)
        self._gaps: list[float] = []
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.token_margin = token_margin
        self.extra_params = dict(params or {})
        self.query = query
        self.windowed = windowed
        self.trim = trim  # windowed: what of a re-sync's snapshot to keep
        self._url = f"{base}/{url_path(path)}.json"
        self._mirror: Any = None
        self._status: str | None = None
        self._live_at: float | None = None
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def mirror(self) -> Any:
        """The data at the path as last seen (normal form; ``None`` when empty)."""
        return self._mirror

    @property
    def status(self) -> str | None:
        """The last status reported (``None`` before ``run()``)."""
        return self._status

    # -- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the path until :meth:`stop` or a ``cancel``; reconnects on its own."""
        if self._loop is not None:
            raise RuntimeError("a Listener runs once; make a new one")
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        final = "stopped"
        try:
            final = await self._follow()
        finally:
            self._report(final)

    def stop(self) -> None:
        """Ask :meth:`run` to close the stream and return (safe from any thread)."""
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    # -- the reconnect loop ------------------------------------------------------------

    def _learn_keep_alive(self, gap: float) -> None:
        """The median of the last few keep-alive-to-keep-alive gaps.

        A stall distorts them both ways: the keep-alives it held arrive in a burst
        (gaps near 0, ignored: under half a second is never the server's cadence, so
        healthy silence can't come to look like death), and the first of them arrives
        a whole stall after the one before (one long gap, outvoted by the median, so
        one hiccup can't make the next stall go unnoticed)."""
        if gap < MIN_KEEP_ALIVE_GAP:
            return
        self._gaps = [*self._gaps[-(KEEP_ALIVE_SAMPLES - 1) :], gap]
        self.keep_alive = min(KEEP_ALIVE_SECONDS, statistics.median(self._gaps))

    @property
    def silence_limit(self) -> float:
        """How long a live stream may be silent before it counts as dead."""
        return max(MIN_SILENCE_SECONDS, self.keep_alive * SILENCE_FACTOR)

    async def _follow(self) -> str:
        assert self._stop_event is not None
        self._report("connecting")
        failures = 0
        grant: Grant | None = None
        replacing: str | None = None  # a token the server refused: get a newer one
        denied_retry = False
        while not self._stop_event.is_set():
            revoked = False
            try:
                if grant is None:
                    grant = await self._until_stopped(self._grant(replacing))
                    if grant is None:
                        return "stopped"
                    replacing = None
                outcome, swapped = await self._connection(grant)
            except _Cancelled:
                return "cancelled"
            except PermissionDenied:
                # A 401 at open: maybe the token, maybe the rules. One retry
                # with a new token tells them apart.
                if denied_retry:
                    return "cancelled"
                denied_retry = True
                replacing = grant.token if grant is not None else None
                grant = None
                continue
            except _Revoked:
                revoked = True
                replacing = grant.token if grant is not None else None
                grant = None
            except NetworkError:
                grant = None
            else:
                if outcome == "stopped":
                    return "stopped"
                if outcome == "swap":
                    grant = swapped  # the status stays "live"
                    continue
                grant = None  # the server ended the stream
            if self._live_at is not None:  # the connection that just ended had gone live
                denied_retry = False
                failures = 0  # it delivered: back to the floor
                self._live_at = None
            self._report("reconnecting")
            delay = 0.0 if revoked and failures == 0 else self._backoff(failures)
            failures += 1
            await self._sleep(delay)
        return "stopped"

    async def _connection(self, grant: Grant) -> tuple[str, Grant | None]:
        """Run one stream until it ends, stop is asked, or a fresh grant is ready to swap in."""
        assert self._stop_event is not None
        self._live_at = None
        conn = asyncio.create_task(self._consume(grant))
        stop = asyncio.create_task(self._stop_event.wait())
        refresh: asyncio.Task[Grant] | None = None
        deadline = grant.expires_at - self.token_margin
        try:
            while True:
                waiting = {conn, stop} if refresh is None else {conn, stop, refresh}
                timeout = None if refresh is not None else max(0.0, deadline - time.time())
                done, _ = await asyncio.wait(
                    waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if stop in done:
                    return "stopped", None
                if conn in done:
                    conn.result()  # raises why the stream ended, if it failed
                    return "ended", None
                if refresh is None:  # the deadline: fetch a token while the stream runs
                    refresh = asyncio.create_task(
                        asyncio.to_thread(
                            self.credentials.current, min_valid=self.token_margin + 60.0
                        )
                    )
                    continue
                if refresh in done:
                    try:
                        fresh = refresh.result()
                    except FirebaseError:
                        fresh = None
                    if fresh is not None and fresh.token != grant.token:
                        return "swap", fresh
                    refresh = None  # keep the old stream; try again a bit later
                    deadline = time.time() + REFRESH_RETRY_SECONDS
        finally:
            await _cancel_all(conn, stop, refresh)

    async def _consume(self, grant: Grant) -> None:
        """Read one stream into the mirror; returns when the server ends it."""
        query = self.query(self._mirror) if self.query is not None else {}
        stream = open_stream(
            self._url,
            {**self.extra_params, **query, **grant.params},
            timeout=KEEP_ALIVE_SECONDS * SILENCE_FACTOR,  # a safety net; the learned limit rules
            headers=grant.headers,
            connect_timeout=CONNECT_SECONDS,
        )
        loop = asyncio.get_running_loop()
        synced = False
        last_keep_alive: float | None = None  # when the previous event was a keep-alive
        try:
            async with asyncio.timeout(self.silence_limit) as silence:
                async for event, data in stream:
                    now = loop.time()
                    if event == "keep-alive":
                        if last_keep_alive is not None:
                            # two in a row, nothing between: exactly the server's interval
                            self._learn_keep_alive(now - last_keep_alive)
                        last_keep_alive = now
                    else:
                        last_keep_alive = None
                    silence.reschedule(now + self.silence_limit)
                    if event in ("put", "patch"):
                        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
                            raise NetworkError(f"the database sent a malformed {event} event")
                        if synced:
                            self._apply(event, data["path"], data.get("data"))
                        else:
                            self._resync(data["path"], data.get("data"))
                            synced = True
                    elif event == "cancel":
                        raise _Cancelled()
                    elif event == "auth_revoked":
                        raise _Revoked()
                    # keep-alive (and anything unknown) only proves the line is alive
        except TimeoutError:
            raise NetworkError(f"the stream went silent for {self.silence_limit:.1f}s") from None
        finally:
            await stream.aclose()

    # -- the mirror ----------------------------------------------------------------------

    def _resync(self, path: str, data: Any) -> None:
        new = set_at(None, split_path(path), normalize(data))
        if self.windowed and isinstance(self._mirror, dict):
            # a window's snapshot: what it holds replaces those children, the rest stays
            if isinstance(new, dict) and self.trim is not None:
                new = self.trim(new)
            new = {**self._mirror, **new} if isinstance(new, dict) else self._mirror
        self._emit(new, resync=True)
        self._live_at = time.monotonic()
        self._report("live")

    def _apply(self, event: str, path: str, data: Any) -> None:
        base = split_path(path)
        if self.windowed and len(base) <= 1 and event == "put" and data is None:
            return  # a child left the window (or the window emptied): nothing was deleted
        if event == "put":
            new = set_at(self._mirror, base, normalize(data))
        else:
            new = self._mirror
            for key, value in (data or {}).items():
                new = set_at(new, base + split_path(key), normalize(value))
        self._emit(new, resync=False)

    def _emit(self, new: Any, *, resync: bool) -> None:
        old, self._mirror = self._mirror, new
        self.on_update(Update(old, new, resync))

    # -- helpers -----------------------------------------------------------------------

    async def _grant(self, replacing: str | None) -> Grant:
        if replacing is not None:
            return await asyncio.to_thread(self.credentials.refresh, replacing)
        return await asyncio.to_thread(self.credentials.current)

    def _backoff(self, failures: int) -> float:
        delay = min(self.backoff_max, self.backoff_initial * (2**failures))
        return delay * random.uniform(0.5, 1.0)

    async def _sleep(self, seconds: float) -> None:
        assert self._stop_event is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: it can swallow a cancel on 3.11
                await self._stop_event.wait()

    async def _until_stopped(self, work: Awaitable[T]) -> T | None:
        """``await work``, or ``None`` if stop is asked first (the work is cancelled)."""
        assert self._stop_event is not None
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._stop_event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            return None
        finally:
            await _cancel_all(task, stop)

    def _report(self, status: str) -> None:
        if status == self._status:
            return
        self._status = status
        if self.on_status is not None:
            self.on_status(status)


async def _cancel_all(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel what is still running and wait for it, so no task outlives the caller."""
    live = [t for t in tasks if t is not None]
    for task in live:
        if not task.done():
            task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
