"""The runner process: watch the work index, claim per session, run turns, heartbeat.

One turn at a time per session (the session lock), different sessions in
parallel up to ``concurrency``. The work index only says *which sessions*
have work; the queue itself decides the order. Expired leases are noticed by
a periodic sweep, so a message whose runner died is picked up again.

Who is served: a session whose owner is on the project's allowlist now
(re-read every few seconds, so a revoke takes effect) and matches this
runner's ``--serve`` filter. Anything else is never claimed. Sessions take
turns: the one served longest ago (or never) goes first, so one busy session
can't starve another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..firebase.admin import AdminStreamCredentials, RunnerDatabase
from ..firebase.client import SERVER_TIMESTAMP
from ..firebase.errors import FirebaseError, PermissionDenied
from ..firebase.listener import Listener, Update
from ..session import allowlist, paths
from ..session.allowlist import ServeSpec
from ..session.text import for_log
from .agents import Agent
from .context import Conversations
from .lease import NothingQueued, try_claim
from .turn import Outcome, TurnRunner, TurnSettings

T = TypeVar("T")
log = logging.getLogger("emdash_fb.runner")
HEARTBEAT_SECONDS = 10.0
ALLOWLIST_FRESH_SECONDS = 5.0  # how long a read of /allow is trusted
REFUSAL_LOG_SECONDS = 300.0  # say "not serving session X" at most this often


class FaultLog:
    """One log line when something starts failing and one when it works again, however many
    retries lie between (an operator reads faults, not retries)."""

    def __init__(self) -> None:
        self._failing: set[str] = set()

    def failed(self, what: str, line: str) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.warning("%s", line)

    def ok(self, what: str, line: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            log.info("%s", line)


class Runner:
    def __init__(
        self,
        db: RunnerDatabase,
        agent: Agent,
        *,
        concurrency: int = 4,
        settings: TurnSettings | None = None,
        grace_s: float = 10.0,
        poll_s: float | None = None,
        serve: ServeSpec | None = None,
    ) -> None:
        self.db = db
        self.agent = agent
        self.conversations = Conversations()  # what earlier turns read, per session
        self.serve = serve or ServeSpec()
        self.concurrency = concurrency
        self.settings = settings or TurnSettings()
        self.grace_s = grace_s
        self.poll_s = poll_s if poll_s is not None else max(0.5, self.settings.lease_s / 2)
        self.executor = ThreadPoolExecutor(
            max_workers=concurrency * 3 + 4, thread_name_prefix="runner-io"
        )
        self.active: dict[str, tuple[TurnRunner, asyncio.Task[Outcome]]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._allow: tuple[float, Any] | None = None  # (read at, /allow)
        self._owners: dict[str, tuple[str, str]] = {}  # sid -> (owner, ownerEmail): fixed at share
        self._refused_logged: dict[str, float] = {}
        self._served_at: dict[str, float] = {}  # sid -> when a turn last started there
        self._work_status = "connecting"
        self._faults = FaultLog()
        self._finished: set[str] = set()  # mids whose turn this runner ended (work entry deleted)
        creds = AdminStreamCredentials(db)
        # Our supervised listener (it reconnects with backoff for ever, whatever fails),
        # not firebase-admin's thread, which dies on a failed reconnect.
        self.work = Listener(
            creds.base_url, creds, "work", self._on_work_update, self._on_work_status
        )

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def request_stop(self) -> None:
        """SIGTERM: stop claiming; finish or hand back current turns within the grace period."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._heartbeat())
        watch = asyncio.create_task(self.work.run())
        log.info(
            "runner %s ready (agent %s, concurrency %d, serving %s)",
            self.db.uid,
            self.agent.name,
            self.concurrency,
            self.serve.describe(),
        )
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    await self._claim_available()
                    self._faults.ok("claims", "claiming works again")
                except FirebaseError as exc:
                    self._faults.failed(
                        "claims",
                        f"claiming failed: {for_log(exc)} (retrying every {self.poll_s:g} s)",
                    )
        finally:
            self.work.stop()
            with contextlib.suppress(Exception):
                await watch
            await self._drain()
            await self._close_agent()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(FirebaseError):
                await self.call(self.db.delete, paths.runner(self.db.uid))
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _on_work_update(self, _update: Update) -> None:
        self._wake.set()

    def _on_work_status(self, status: str) -> None:
        before, self._work_status = self._work_status, status
        if status == "reconnecting" and before == "live":
            log.warning("lost the work stream; reconnecting (claims go on by polling)")
        elif status == "live" and before == "reconnecting":
            log.info("the work stream is back")
        elif status == "cancelled":
            log.warning("the database refused the work stream: is this a runner credential?")

    async def _claim_available(self) -> None:
        if self._work_status == "live":
            work = self.work.mirror or {}  # what the stream shows: no read per pass
        else:
            work = await self.call(self.db.get, "work") or {}
        # Entries of turns this runner just finished may still be in the stream's copy:
        # they are gone from the database, not work to claim.
        self._finished &= work.keys()
        work = {mid: entry for mid, entry in work.items() if mid not in self._finished}
        by_session: dict[str, float] = {}
        for entry in work.values():
            if isinstance(entry, dict) and isinstance(entry.get("sid"), str):
                sid = entry["sid"]
                at = entry.get("at", 0)
                by_session[sid] = min(
                    by_session.get(sid, float("inf")), at if isinstance(at, int | float) else 0
                )
        # Fair turns: the session served longest ago (or never) first, then oldest work.
        self._served_at = {
            s: t for s, t in self._served_at.items() if s in by_session or s in self.active
        }
        order = sorted(by_session, key=lambda s: (self._served_at.get(s, 0.0), by_session[s]))
        for sid in order:
            if len(self.active) >= self.concurrency or self._stopping.is_set():
                return
            if sid in self.active:
                continue
            try:
                if not await self._may_serve(sid):
                    continue
            except PermissionDenied:
                await self._drop_work(sid, work)  # gone: nothing there can be answered
                continue
            except FirebaseError as exc:
                self._faults.failed("claims", f"claiming failed: {for_log(exc)} (will retry)")
                continue
            try:
                claim = await self.call(try_claim, self.db, sid, self.settings.lease_s)
            except (PermissionDenied, NothingQueued):
                # Closed, idle, deleted or empty: nothing there can be answered.
                await self._drop_work(sid, work)
                continue
            except FirebaseError as exc:
                self._faults.failed("claims", f"claiming failed: {for_log(exc)} (will retry)")
                continue
            if claim is None:
                continue
            turn = TurnRunner(
                self.db, self.agent, claim, self.settings, self.executor, self.conversations
            )
            task = asyncio.create_task(self._run_turn(turn))
            self.active[sid] = (turn, task)
            self._served_at[sid] = time.monotonic()

    async def _may_serve(self, sid: str) -> bool:
        """Whether this runner may answer ``sid``: its owner is allowed now and served here."""
        owner = self._owners.get(sid)
        if owner is None:
            meta = await self.call(self.db.get, paths.meta(sid))
            if not isinstance(meta, dict) or not isinstance(meta.get("owner"), str):
                raise PermissionDenied("the session is gone")
            email = meta.get("ownerEmail")
            owner = (meta["owner"], email if isinstance(email, str) else "")
            if len(self._owners) > 10_000:
                self._owners.clear()
            self._owners[sid] = owner
        now = time.monotonic()
        if self._allow is None or now - self._allow[0] > ALLOWLIST_FRESH_SECONDS:
            self._allow = (now, await self.call(self.db.get, "allow"))
        if allowlist.is_allowed(self._allow[1], *owner) and self.serve.serves(*owner):
            return True
        if now - self._refused_logged.get(sid, -REFUSAL_LOG_SECONDS) >= REFUSAL_LOG_SECONDS:
            self._refused_logged[sid] = now
            why = "not on the allowlist" if self.serve.everyone else "not served by this runner"
            log.info(
                "not serving session %s: its owner %s is %s", for_log(sid), for_log(owner[0]), why
            )
        return False

    async def _drop_work(self, sid: str, work: dict[str, Any]) -> None:
        stale = {
            paths.work(mid): None
            for mid, entry in work.items()
            if isinstance(entry, dict) and entry.get("sid") == sid
        }
        with contextlib.suppress(FirebaseError):
            await self.call(self.db.update, "", stale)
        log.info(
            "session %s has nothing left to answer; dropped %d work entries",
            for_log(sid),
            len(stale),
        )

    async def _run_turn(self, turn: TurnRunner) -> Outcome:
        started = time.monotonic()
        try:
            outcome = await turn.run()
        except FirebaseError as exc:
            outcome = Outcome("lost", error=str(exc))
        except Exception as exc:  # never let one turn take the runner down
            log.exception("turn %s/%s crashed", turn.sid, turn.mid)
            outcome = Outcome("lost", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.active.pop(turn.sid, None)
            self._wake.set()  # the session may have more queued
        if outcome.state in ("done", "failed", "cancelled"):  # its finish deleted the work entry
            self._finished.add(turn.mid)
        log.info(
            "turn %s/%s by %s: %s in %.1fs, %d chars, %d chunks, attempt %d%s",
            for_log(turn.sid),
            for_log(turn.mid),
            for_log(turn.claim.item.name or "?", 64),
            outcome.state,
            time.monotonic() - started,
            outcome.chars,
            outcome.chunks,
            outcome.attempt,
            f" ({for_log(outcome.error)})" if outcome.error else "",
        )
        return outcome

    async def _close_agent(self) -> None:
        """End what the agent keeps between turns (long-lived CLI processes)."""
        close = getattr(self.agent, "close", None)
        if close is None:
            return
        try:
            await asyncio.wait_for(close(), 10)
        except Exception as exc:  # shutting down: say it, don't fail the exit
            log.warning("closing the agent failed: %s", for_log(str(exc)))

    async def _drain(self) -> None:
        if not self.active:
            return
        tasks = [task for _turn, task in self.active.values()]
        _done, pending = await asyncio.wait(tasks, timeout=self.grace_s)
        if pending:
            for turn, _task in list(self.active.values()):
                turn.stop()
            await asyncio.wait(pending, timeout=5)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.call(
                    self.db.set,
                    paths.runner(self.db.uid),
                    {
                        "heartbeat": SERVER_TIMESTAMP,
                        "agent": self.agent.name,
                        "capacity": self.concurrency,
                        "active": len(self.active),
                    },
                )
                self._faults.ok("heartbeat", "the heartbeat is written again")
            except FirebaseError as exc:
                self._faults.failed(
                    "heartbeat",
                    f"can't write the heartbeat: {for_log(exc)} (members see 'agent offline' "
                    f"after 35 s; retrying every {HEARTBEAT_SECONDS:g} s)",
                )
            await asyncio.sleep(HEARTBEAT_SECONDS)
