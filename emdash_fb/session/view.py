"""The live view of one session: one stream, a local mirror, typed events.

``SessionView`` follows ``/sessions/$sid`` with a single listener (members can
read the whole session, so one stream is the fewest possible), feeds each
mirror update through ``EventDeriver``, and re-evaluates time-based states on
a tick. When the stream is cancelled (read access lost) it finds out why: you
were kicked, or the session is gone. It also reads the runners' heartbeats
every few seconds, so the agent's status can say ``offline`` truthfully.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ..firebase.errors import FirebaseError, PermissionDenied
from ..firebase.identity import Auth
from ..firebase.listener import Listener, Update
from ..firebase.target import Target
from . import paths
from .events import (
    ConnectionChanged,
    Event,
    EventDeriver,
    NoLongerMember,
    SessionClosedEvent,
    YouWereKicked,
)
from .ops import SessionClient
from .records import SessionState

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
        self.listener = Listener(target, auth, paths.session(sid), self._on_update, self._on_status)
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

    def _on_update(self, update: Update) -> None:
        self._emit(self.deriver.update(update.new, self.now_ms()))
        self.client.clock_offset_ms = self.deriver.clock_offset_ms

    def _on_status(self, status: str) -> None:
        self.status = status
        self.on_event(ConnectionChanged(status))

    async def _explain_cancel(self) -> None:
        """Read access was lost: kicked, left (elsewhere, e.g. another terminal), or gone."""
        me = self.client.me.uid
        try:
            kicked: Any = await asyncio.to_thread(self.client.db.get, paths.kicked(self.sid, me))
        except FirebaseError:
            kicked = None
        if kicked is not None:
            self.on_event(YouWereKicked())
            return
        try:
            await asyncio.to_thread(self.client.db.get, paths.meta(self.sid))
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
        listener = asyncio.create_task(self.listener.run())
        stopped = asyncio.create_task(self._stopped.wait())
        try:
            await asyncio.wait({listener, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if self.status == "cancelled":
                await self._explain_cancel()
        finally:
            self.listener.stop()
            for task in (ticker, runners, listener, stopped):
                task.cancel()
            for task in (ticker, runners, listener, stopped):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _watch_runners(self) -> None:
        """The freshest runner heartbeat (``/runners`` is small: one record per runner)."""
        while True:
            try:
                runners = await asyncio.to_thread(self.client.db.get, "runners")
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
