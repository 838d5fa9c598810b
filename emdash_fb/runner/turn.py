"""One turn: from a claimed message to a finished reply in the history.

queued -> running -> done | failed | cancelled (or interrupted, when the
runner must let go). Text streams through a ``ChunkWriter``; tool events are
written as they happen; the reply ``transcript/<mid>~a`` is posted in the same
atomic write that ends the turn, deletes the queue item and work entry and
releases the lock. Its text is the turn's kept chunks, not a second copy, so
members who watched it stream never download it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..firebase.admin import RunnerDatabase
from ..firebase.client import SERVER_TIMESTAMP
from ..firebase.errors import FirebaseError, NetworkError, PermissionDenied
from ..session import paths
from ..session.approvals import Policy
from ..session.attachments import decode_records
from ..session.records import as_dict
from ..session.text import for_log
from .agents import (
    Agent,
    AgentError,
    AgentSession,
    ApprovalNeeded,
    Attachment,
    ChatMessage,
    Decision,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
)
from .approvals import ApprovalDesk
from .chunks import ChunkWriter
from .context import MAX_HISTORY, Conversations, read_conversation, read_live
from .lease import Claim, renew

T = TypeVar("T")
log = logging.getLogger("emdash_fb.runner")
MAX_TOOL_OUTPUT = 2000
CANCEL_POLL_SECONDS = 0.4


@dataclass
class TurnSettings:
    lease_s: float = 30.0
    flush_interval: float = 0.1
    flush_bytes: int = 1024
    min_chunk_bytes: int = 128  # while text flows, hold a chunk until it is this big...
    max_flush_delay: float = 0.25  # ...but at most this long (see chunks.py)
    max_attempts: int = 2  # the first try plus one retry after an interruption
    workdir: Path = Path(".")
    #: the longest a tool request waits for an answer, whatever the policy says (None: the policy's)
    approval_wait_s: float | None = None


@dataclass
class Outcome:
    state: str  # done | failed | cancelled | interrupted | skipped | lost
    chars: int = 0
    chunks: int = 0
    seconds: float = 0.0
    error: str = ""
    attempt: int = 1


class LeaseLost(Exception):
    pass


class TurnRunner:
    """Runs one claimed turn; ``stop()`` asks it to let go (shutdown)."""

    def __init__(
        self,
        db: RunnerDatabase,
        agent: Agent,
        claim: Claim,
        settings: TurnSettings,
        executor: Executor,
        conversations: Conversations | None = None,
    ) -> None:
        self.db = db
        self.agent = agent
        self.claim = claim
        self.settings = settings
        self.executor = executor
        self.sid, self.mid = claim.sid, claim.mid
        self._cancel_requested = asyncio.Event()
        self._release = asyncio.Event()
        self._lost = asyncio.Event()
        self.attempt = 1
        self.crashes = 0
        self._started = False
        self.desk: ApprovalDesk | None = None
        self.conversations = conversations
        self._conversation: asyncio.Task[tuple[Any, list[Any]]]

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def stop(self) -> None:
        """Shutdown: stop the agent and hand the message back to the queue."""
        self._release.set()

    # -- the turn ------------------------------------------------------------------

    async def run(self) -> Outcome:
        # The conversation is read while the live part is: the turn starts sooner.
        self._conversation = asyncio.create_task(
            read_conversation(
                self.call, self.db, self.sid, self.mid, self.claim.item.created_at,
                MAX_HISTORY, self.conversations,
            )
        )  # fmt: skip
        try:
            return await self._run()
        finally:
            if not self._conversation.done():
                self._conversation.cancel()
            with contextlib.suppress(BaseException):
                await self._conversation

    async def _run(self) -> Outcome:
        started = time.monotonic()
        turn_path = paths.turn(self.sid, self.mid)
        # The live part of the session and this message's earlier attempt, if any.
        session = await read_live(self.call, self.db, self.sid, self.mid)
        if session is None:
            return Outcome("lost", error="session deleted")
        previous = (session.get("turns") or {}).get(self.mid)
        self._started = isinstance(previous, dict)
        if isinstance(previous, dict):
            self.attempt = _count(previous.get("attempt")) + 1
            self.crashes = _count(previous.get("crashes"))
            if previous.get("state") == "running":
                self.crashes += 1  # its runner died mid-reply (a shutdown hands back instead)
            if previous.get("cancelRequested"):
                # Cancel wins: what a member stopped is never carried out by a retry.
                return await self._finish("cancelled", 0, "", started)
        if self.crashes > self.settings.max_attempts - 1:
            return await self._finish(
                "failed",
                0,
                f"the runner stopped mid-reply {self.crashes} times; not retrying",
                started,
            )
        if isinstance(previous, dict) and previous.get("state") == "running":
            # A dead runner's turn: mark it visibly before retrying.
            await self._write(
                self.db.update,
                turn_path,
                {
                    "state": "interrupted",
                    "error": "the runner stopped mid-reply; retrying",
                    "endedAt": SERVER_TIMESTAMP,
                    "crashes": self.crashes,
                },
            )
        if self.claim.item.uid not in (session.get("members") or {}):
            return await self._finish(
                "failed", 0, "the author is no longer a member of this session", started
            )
        turn_input = await self._turn_input(session)
        self.desk = ApprovalDesk(
            db=self.db,
            sid=self.sid,
            mid=self.mid,
            author=self.claim.item.uid,
            names={
                uid: str(as_dict(m).get("name", ""))
                for uid, m in as_dict(session.get("members")).items()
            },
            call=self.call,
            write=self._write,
            max_wait_s=self.settings.approval_wait_s,
        )
        await self._write(
            self.db.update,
            paths.session(self.sid),
            {
                "agent": self._agent_record(session, turn_input),
                f"queue/{self.mid}/state": "running",
                f"turns/{self.mid}": {
                    "state": "running",
                    "runner": self.db.uid,
                    "fence": self.claim.fence,
                    "startedAt": SERVER_TIMESTAMP,
                    "attempt": self.attempt,
                    "crashes": self.crashes,
                },
            },
            verify=self._started_by_me,
        )
        self._started = True
        writer = ChunkWriter(
            self._write_chunks,
            flush_interval=self.settings.flush_interval,
            flush_bytes=self.settings.flush_bytes,
            min_chunk_bytes=self.settings.min_chunk_bytes,
            max_delay=self.settings.max_flush_delay,
        )
        writer.start()
        watch = asyncio.create_task(self._watch_cancel())
        renewer = asyncio.create_task(self._renew_lease())
        agent_task = asyncio.create_task(self._drive_agent(turn_input, writer))
        waiters = {
            agent_task,
            asyncio.create_task(self._cancel_requested.wait()),
            asyncio.create_task(self._release.wait()),
            asyncio.create_task(self._lost.wait()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            renewer.cancel()
            for t in waiters:
                if t is not agent_task:
                    t.cancel()
        error = ""
        if agent_task.done():
            exc = agent_task.exception()
            state = "done" if exc is None else "failed"
            if isinstance(exc, AgentError):
                error = exc.summary
            elif isinstance(exc, FirebaseError):
                state, error = "lost", str(exc)
            elif exc is not None:
                error = f"agent error: {type(exc).__name__}: {exc}"
        else:
            agent_task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(agent_task, 1.0)
            if self._lost.is_set():
                state = "lost"
            elif self._cancel_requested.is_set():
                state = "cancelled"
            else:
                state = "interrupted"
        if self.desk is not None and self.desk.open:
            await self.desk.settle("cancel" if state == "cancelled" else "stopped")
        try:
            await writer.close()
        except FirebaseError:
            state = "lost"
        if writer.error is not None:
            state = "lost"
        if state == "lost":
            return Outcome(
                "lost",
                writer.chars,
                writer.writes,
                time.monotonic() - started,
                error,
                self.attempt,
            )
        if state == "interrupted":
            await self._hand_back()
            return Outcome(
                "interrupted",
                writer.chars,
                writer.writes,
                time.monotonic() - started,
                "",
                self.attempt,
            )
        outcome = await self._finish(state, writer.chars, error, started)
        outcome.chunks = writer.writes
        return outcome

    async def _turn_input(self, session: dict[str, Any]) -> TurnInput:
        item = self.claim.item
        current, before = await self._conversation
        history = [
            ChatMessage(m.role, m.name if m.role == "user" else "agent", m.text,
                        m.uid if m.role == "user" else "")
            for m in before
        ]  # fmt: skip
        meta = as_dict(session.get("meta"))
        files: tuple[Attachment, ...] = ()
        if current is not None and current.attachments:
            raw = await self.call(self.db.get, f"attachments/{self.sid}/{self.mid}")
            files = tuple(Attachment(a.name, a.media_type, a.data) for a in decode_records(raw))
        agent = as_dict(session.get("agent"))
        resume = agent.get("sessionId") if agent.get("name") == self.agent.name else None
        return TurnInput(
            session=self.sid,
            message_id=self.mid,
            history=tuple(history),
            message=ChatMessage("user", item.name, item.text, item.uid),
            mode=str(meta.get("mode", "code")),
            workdir=self.settings.workdir,
            attachments=files,
            by_owner=item.uid == meta.get("owner"),
            resume=resume if isinstance(resume, str) and resume else None,
            preapproved=Policy.parse(meta.get("policy")).allowed,
        )

    def _agent_record(self, session: dict[str, Any], turn_input: TurnInput) -> dict[str, Any]:
        """sessions/<sid>/agent: which agent answers, where; its native session is kept
        while the same agent answers (another agent starts its own)."""
        record: dict[str, Any] = {
            "name": self.agent.name,
            "runner": self.db.uid,
            "folder": Path(self.settings.workdir).resolve().name[:200],
            "at": SERVER_TIMESTAMP,
        }
        old = as_dict(session.get("agent"))
        if old.get("name") == self.agent.name:
            for key in ("model", "sessionId"):
                if isinstance(old.get(key), str):
                    record[key] = old[key]
        return record

    async def _drive_agent(self, turn_input: TurnInput, writer: ChunkWriter) -> None:
        # aclosing: on cancellation the agent's cleanup (killing a subprocess)
        # runs before this task ends, not later in a separate task.
        async with contextlib.aclosing(self.agent.run(turn_input)) as events:
            reply: Decision | None = None
            while True:
                try:
                    ev = await events.asend(reply)  # type: ignore[attr-defined]
                except StopAsyncIteration:
                    return
                reply = await self._handle(ev, writer)

    async def _handle(self, ev: object, writer: ChunkWriter) -> Decision | None:
        if writer.error is not None:
            raise writer.error
        if isinstance(ev, ApprovalNeeded):
            await writer.flush()
            assert self.desk is not None
            decision = await self.desk.decide(ev)
            log.info(
                "session %s: %s %s: %s by %s",
                for_log(self.sid),
                for_log(ev.tool, 64),
                for_log(ev.summary, 120),
                "allowed" if decision.allow else "denied",
                for_log(decision.by, 64),
            )
            return decision
        if isinstance(ev, AgentSession):
            update: dict[str, Any] = {"runner": self.db.uid, "at": SERVER_TIMESTAMP}
            if ev.session_id:
                update["sessionId"] = ev.session_id[:200]
            if ev.model:
                update["model"] = ev.model[:100]
            await self._write(self.db.update, f"{paths.session(self.sid)}/agent", update)
            return None
        if isinstance(ev, TextDelta):
            writer.add(ev.text)
        elif isinstance(ev, ToolStart):
            await writer.flush()
            await self._write(
                self.db.update,
                f"{paths.turn(self.sid, self.mid)}/tools",
                {
                    ev.id: {
                        "name": ev.name[:100],
                        "input": ev.input[:500],
                        "state": "running",
                        "at": SERVER_TIMESTAMP,
                    }
                },
            )
        elif isinstance(ev, ToolResult):
            await writer.flush()
            base = f"{paths.turn(self.sid, self.mid)}/tools/{ev.id}"
            await self._write(
                self.db.update,
                base,
                {"state": "done" if ev.ok else "error", "output": ev.output[:MAX_TOOL_OUTPUT]},
            )
        return None

    async def _write_chunks(self, chunks: dict[str, str]) -> None:
        path = f"{paths.turn(self.sid, self.mid)}/chunks"
        await self._write(self.db.update, path, chunks, verify=lambda: self._holds(path, chunks))

    async def _watch_cancel(self) -> None:
        # A small poll (a few bytes per read) rather than a listener thread per
        # turn: cancellation must land within a second, and this stays bounded.
        path = f"{paths.turn(self.sid, self.mid)}/cancelRequested"
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                if await self.call(self.db.get, path) is not None:
                    self._cancel_requested.set()
                    return
            except FirebaseError:
                continue

    async def _renew_lease(self) -> None:
        interval = max(0.2, self.settings.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                until = await self.call(renew, self.db, self.claim, self.settings.lease_s)
            except FirebaseError:
                continue  # transient: the lease still has time; try again
            if until is None:
                self._lost.set()
                return

    async def _finish(self, state: str, chars: int, error: str, started: float) -> Outcome:
        # The reply's text is the turn's chunks: members streamed them already,
        # so the history entry points at them instead of carrying the text again.
        base = paths.session(self.sid)
        updates: dict[str, Any] = {
            f"{base}/turns/{self.mid}/state": state,
            f"{base}/turns/{self.mid}/endedAt": SERVER_TIMESTAMP,
            f"{paths.message(self.sid, paths.reply_key(self.mid))}": {
                "role": "assistant",
                "uid": self.db.uid,
                "name": self.agent.name,
                "at": SERVER_TIMESTAMP,
                "replyTo": self.mid,
                **({"state": state} if state != "done" else {}),
            },
            f"{base}/queue/{self.mid}": None,
            f"{base}/lock": None,
            **self._slot_release(base),
            f"{base}/meta/lastActivity": SERVER_TIMESTAMP,
            paths.work(self.mid): None,
        }
        if error:
            updates[f"{base}/turns/{self.mid}/error"] = error[:2000]
        if self.crashes and not self._started:
            updates[f"{base}/turns/{self.mid}/crashes"] = self.crashes
        if not self._started:
            # Ended before it began (e.g. the author left): the turn record is new.
            updates.update(
                {
                    f"{base}/turns/{self.mid}/runner": self.db.uid,
                    f"{base}/turns/{self.mid}/fence": self.claim.fence,
                    f"{base}/turns/{self.mid}/startedAt": SERVER_TIMESTAMP,
                    f"{base}/turns/{self.mid}/attempt": self.attempt,
                }
            )
        await self._write(self.db.update, "", updates, verify=lambda: self._ended_as(state))
        return Outcome(state, chars, 0, time.monotonic() - started, error, self.attempt)

    # -- writes that survive connection faults -------------------------------------

    async def _write(
        self, fn: Callable[..., Any], *args: Any, verify: Callable[[], bool] | None = None
    ) -> None:
        """A turn write, retried through connection faults while the lease lasts.

        A write whose response was lost may already have landed: the HTTP client
        replays it, and the rules then refuse the replay (the lock is gone, the id
        used). ``verify`` reads back whether the write is in the database, so a
        write that worked is never reported as failed.
        """
        deadline = time.monotonic() + self.settings.lease_s * 0.6
        delay = 0.2
        while True:
            try:
                await self.call(fn, *args)
                return
            except PermissionDenied:
                if verify is not None and await self._verified(verify):
                    return
                raise
            except NetworkError:
                if verify is not None and await self._verified(verify):
                    return
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    async def _verified(self, check: Callable[[], bool]) -> bool:
        try:
            return await self.call(check)
        except FirebaseError:
            return False

    def _holds(self, path: str, values: dict[str, Any]) -> bool:
        current = self.db.get(path)
        return isinstance(current, dict) and all(current.get(k) == v for k, v in values.items())

    def _started_by_me(self) -> bool:
        turn = self.db.get(paths.turn(self.sid, self.mid))
        return (
            isinstance(turn, dict)
            and turn.get("runner") == self.db.uid
            and turn.get("fence") == self.claim.fence
            and turn.get("attempt") == self.attempt
        )

    def _ended_as(self, state: str) -> bool:
        turn = self.db.get(paths.turn(self.sid, self.mid))
        return isinstance(turn, dict) and turn.get("state") == state and "endedAt" in turn

    def _slot_release(self, base: str) -> dict[str, Any]:
        """Free the author's waiting slot with the queue item (the rules require both)."""
        item = self.claim.item
        return {f"{base}/slots/{item.uid}/{item.slot}": None} if item.slot else {}

    async def _hand_back(self) -> None:
        """Shutdown mid-turn: mark it interrupted and put the message back in line."""
        await self._write(
            self.db.update,
            paths.session(self.sid),
            {
                f"turns/{self.mid}/state": "interrupted",
                f"turns/{self.mid}/error": "the runner shut down mid-reply; it will be retried",
                f"turns/{self.mid}/endedAt": SERVER_TIMESTAMP,
                f"queue/{self.mid}/state": "queued",
                "lock": None,
            },
            verify=lambda: self._ended_as("interrupted"),
        )


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
