"""The live view of one session: three streams, one composed mirror, typed events.

``SessionView`` follows a session with three listeners (see ``windows.py``):
the live part of ``/sessions/$sid`` whole (a ranged query), and windows of
its transcript and turns, which grow with history. It composes their mirrors
into one tree (the shape ``EventDeriver`` knows: the live part with
``transcript`` and ``turns`` beside it), feeds each update through
``EventDeriver``, and re-evaluates time-based states on a tick. The first
picture (``Synced``) waits for all three; the turns window opens once the
transcript's has arrived (it starts at the oldest message shown). Joining,
reconnecting and each event cost the same in a long session as in a new one. When the stream is cancelled (read access lost) it finds out why: you
were kicked, or the session is gone. It also reads the runners' heartbeats
every few seconds, so the agent's status can say ``offline`` truthfully.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from ..firebase.errors import FirebaseError, PermissionDenied
from ..firebase.identity import Auth
from ..firebase.listener import Listener, Update
from ..firebase.target import Target
from . import paths, windows
from .events import (
    ConnectionChanged,
    Event,
    EventDeriver,
    NoLongerMember,
    SessionClosedEvent,
    YouWereKicked,
)
from .ops import SessionClient
from .records import SessionState, as_dict

TICK_SECONDS = 1.0
RUNNERS_EVERY_SECONDS = 10.0


class SessionView:
    def __init__(
        self,
        target: Target,
        auth: Auth,
        client: SessionClient,
        sid: str,
        on_event: Callable[[Event], None],
        *,
        tick_seconds: float = TICK_SECONDS,
        runners_every: float = RUNNERS_EVERY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sid = sid
        self.client = client
        self.on_event = on_event
        self.tick_seconds = tick_seconds
        self.runners_every = runners_every
        self._clock = clock
        self.deriver = EventDeriver(sid, auth.current().uid)
        self.live = Listener(
            target,
            auth,
            paths.session(sid),
            lambda u: self._on_part("live", u),
            lambda s: self._on_part_status("live", s),
            params=windows.live_query(),
        )
        self.transcript = Listener(
            target,
            auth,
            paths.messages(sid),
            lambda u: self._on_part("transcript", u),
            lambda s: self._on_part_status("transcript", s),
            query=lambda mirror: windows.transcript_query(mirror, self.live.mirror),
            windowed=True,
            trim=lambda snapshot: windows.since(snapshot, "at", self.floor),
        )
        self.turns = Listener(
            target,
            auth,
            f"{paths.session(sid)}/turns",
            lambda u: self._on_part("turns", u),
            lambda s: self._on_part_status("turns", s),
            query=lambda mirror: windows.turns_query(mirror, self.transcript.mirror),
            windowed=True,
            trim=lambda snapshot: windows.since(snapshot, "startedAt", self.floor),
        )
        self.listeners = (self.live, self.transcript, self.turns)
        #: the server time of the oldest message of the first window: older history is
        #: never part of this view (``/history`` reads it)
        self.floor: int | None = None
        self._synced: set[str] = set()
        self._transcript_ready = asyncio.Event()
        self._statuses: dict[str, str] = {}
        self._stopped = asyncio.Event()
        self.status = "connecting"
        self._parsed: tuple[Any, SessionState] | None = None

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def state(self) -> SessionState:
        """The session as of the last update (parsed once per update: the mirror is
        copy-on-write, so an unchanged tree is the same object)."""
        tree = self.deriver.tree
        if self._parsed is None or self._parsed[0] is not tree:
            self._parsed = (tree, SessionState.parse(self.sid, tree or {}))
        return self._parsed[1]

    def _emit(self, events: list[Event]) -> None:
        for ev in events:
            self.on_event(ev)

    def compose(self) -> dict[str, Any]:
        """The session as the three mirrors hold it, in the shape of ``/sessions/$sid``
        (unchanged branches are the same objects, so the deriver skips them)."""
        tree = dict(self.live.mirror) if isinstance(self.live.mirror, dict) else {}
        tree["transcript"] = self.transcript.mirror or {}
        tree["turns"] = self.turns.mirror or {}
        return tree

    def _on_part(self, part: str, update: Update) -> None:
        self._synced.add(part)
        if part == "transcript" and not self._transcript_ready.is_set():
            self.floor = windows.oldest(as_dict(update.new), "at")
            self._transcript_ready.set()
        if len(self._synced) < len(self.listeners):
            return  # the first picture waits for all three
        self._emit(self.deriver.update(self.compose(), self.now_ms()))
        self.client.clock_offset_ms = self.deriver.clock_offset_ms

    def _on_part_status(self, part: str, status: str) -> None:
        """One status for the view: cancelled or stopped when the live part is; live when
        every stream is; otherwise reconnecting (or connecting, before the first picture)."""
        self._statuses[part] = status
        if part == "live" and status in ("cancelled", "stopped"):
            combined = status
        elif all(self._statuses.get(p) == "live" for p in ("live", "transcript", "turns")):
            combined = "live"
        elif "reconnecting" in self._statuses.values():
            combined = "reconnecting"
        else:
            combined = "connecting" if self.status == "connecting" else self.status
        if combined != self.status:
            self.status = combined
            self.on_event(ConnectionChanged(combined))

    async def _explain_cancel(self) -> None:
        """Read access was lost: kicked, left (elsewhere, e.g. another terminal), or gone."""
        me = self.client.me.uid
        try:
            kicked: Any = await _in_daemon_thread(self.client.db.get, paths.kicked(self.sid, me))
        except FirebaseError:
            kicked = None
        if kicked is not None:
            self.on_event(YouWereKicked())
            return
        try:
            await _in_daemon_thread(self.client.db.get, paths.meta(self.sid))
        except PermissionDenied:
            self.on_event(NoLongerMember())
            return
        except FirebaseError:
            pass
        self.on_event(SessionClosedEvent())

    async def run(self) -> None:
        """Follow the session until ``stop()``, a kick, or the session going away."""
        ticker = asyncio.create_task(self._tick())
        runners = asyncio.create_task(self._watch_runners())
        live = asyncio.create_task(self.live.run())
        transcript = asyncio.create_task(self.transcript.run())
        turns = asyncio.create_task(self._turns_after_transcript())
        stopped = asyncio.create_task(self._stopped.wait())
        tasks = (ticker, runners, live, transcript, turns, stopped)
        try:
            await asyncio.wait({live, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if self.status == "cancelled":
                await self._explain_cancel()
        finally:
            for listener in self.listeners:
                listener.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _turns_after_transcript(self) -> None:
        """The turns window starts at the oldest message shown: open it once that is known."""
        await self._transcript_ready.wait()
        await self.turns.run()

    async def _watch_runners(self) -> None:
        """The freshest runner heartbeat (``/runners`` is small: one record per runner)."""
        while True:
            try:
                runners = await _in_daemon_thread(self.client.db.get, "runners")
            except FirebaseError:
                runners = None  # unknown: keep the last reading
            else:
                beats = [
                    r["heartbeat"]
                    for r in (runners or {}).values()
                    if isinstance(r, dict) and isinstance(r.get("heartbeat"), int | float)
                ]
                self.deriver.runner_heartbeat = int(max(beats)) if beats else 0
                self._emit(self.deriver.tick(self.now_ms()))
            await asyncio.sleep(self.runners_every)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            self._emit(self.deriver.tick(self.now_ms()))

    def stop(self) -> None:
        self._stopped.set()


async def _in_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a daemon thread: a read still retrying through a dead network when
    the view stops (Ctrl-C in ``watch``) must not hold the process open, as a default
    executor's thread would (asyncio.run joins those on the way out)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not done.done():
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

    def work() -> None:
        try:
            result: Any = fn(*args)
            ok = True
        except BaseException as exc:  # handed to the awaiting task
            result, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, daemon=True, name="emdash-view-read").start()
    return await done
