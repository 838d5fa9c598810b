"""Asking the session: the runner's side of shared tool approvals.

What it owns: turning an agent's :class:`ApprovalNeeded` into a
:class:`Decision`. A tool the owner's policy pre-approves is allowed at once
(nothing is written). Anything else becomes a request at
``sessions/<sid>/turns/<mid>/approvals/<aid>`` that every member sees; the runner
polls for an answer (a few bytes per read, like the cancel watch) until the
request expires, and writes the outcome it acted on, so the history says what
was decided and by whom. No answer in time is a deny. A request still open
when the turn ends (cancelled, or the runner stopping) is closed with a deny
by ``cancel`` / ``stopped``. Who may answer is the rules' business (see
``emdash_fb.session.approvals``): any answer present was allowed by them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..firebase.client import SERVER_TIMESTAMP
from ..firebase.errors import FirebaseError, PermissionDenied
from ..session import paths
from ..session.approvals import MAX_DETAIL, MAX_SUMMARY, Answer, Policy
from ..session.text import for_log
from .agents import ApprovalNeeded, Decision

log = logging.getLogger("emdash_fb.runner")
POLL_SECONDS = 0.3
#: Past expiresAt (by this runner's clock) before a timeout is written, so the
#: server's clock has passed it too.
EXPIRY_SLACK_S = 0.5

Call = Callable[..., Awaitable[Any]]
Write = Callable[..., Awaitable[None]]


class ApprovalDesk:
    """One turn's approvals."""

    def __init__(
        self,
        *,
        db: Any,
        sid: str,
        mid: str,
        author: str,
        names: dict[str, str],
        call: Call,
        write: Write,
        clock: Callable[[], float] = time.time,
        max_wait_s: float | None = None,
    ) -> None:
        self.db = db
        self.sid, self.mid, self.author = sid, mid, author
        self.names = names  # uid -> display name, for Decision.by
        self.call = call
        self.write = write
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.open: set[str] = set()  # requests written, no outcome yet
        self._used: set[str] = set()

    def path(self, aid: str) -> str:
        return paths.approval(self.sid, self.mid, aid)

    async def policy(self) -> Policy:
        """The owner's policy now (it may change mid-turn)."""
        return Policy.parse(await self.call(self.db.get, f"{paths.meta(self.sid)}/policy"))

    async def decide(self, ev: ApprovalNeeded) -> Decision:
        policy = await self.policy()
        if ev.tool in policy.allowed:
            return Decision(True, by="policy")
        aid = self._fresh(ev.id)
        timeout_s: float = policy.timeout_s
        if self.max_wait_s is not None:
            timeout_s = min(timeout_s, self.max_wait_s)
        expires_at = int((self.clock() + timeout_s) * 1000)
        record = {
            "tool": ev.tool[:100] or "tool",
            "summary": ev.summary[:MAX_SUMMARY],
            "detail": ev.detail[:MAX_DETAIL],
            "author": self.author,
            "requestedAt": SERVER_TIMESTAMP,
            "expiresAt": expires_at,
        }
        path = self.path(aid)
        await self.write(self.db.set, path, record, verify=lambda: self._holds(path, expires_at))
        self.open.add(aid)
        log.info(
            "session %s: waiting for an answer to %s %s",
            for_log(self.sid),
            for_log(ev.tool, 64),
            for_log(ev.summary, 120),
        )
        answer = await self._wait(aid, expires_at / 1000 + EXPIRY_SLACK_S)
        if answer is None:
            answer = await self._close(aid, "timeout")
            if answer is None:
                return Decision(False, f"nobody answered within {timeout_s:g} s", "timeout")
        return await self._act_on(aid, answer)

    async def settle(self, by: str) -> None:
        """Close requests still open when the turn ends (``cancel`` or ``stopped``)."""
        for aid in list(self.open):
            try:
                await self._close(aid, by)
            except FirebaseError:
                continue  # best effort: an open request of an ended turn reads as ended

    # -- internals ------------------------------------------------------------------

    def _fresh(self, raw: str) -> str:
        aid = raw or "tool"
        n = 1
        while aid in self._used:
            n += 1
            aid = f"{raw}-{n}"
        self._used.add(aid)
        return aid

    def _holds(self, path: str, expires_at: int) -> bool:
        return self.db.get(f"{path}/expiresAt") == expires_at

    async def _wait(self, aid: str, until: float) -> Answer | None:
        path = f"{self.path(aid)}/answer"
        while True:
            try:
                answer = Answer.parse(await self.call(self.db.get, path))
            except FirebaseError:
                answer = None  # a fault: keep asking until the request expires
            if answer is not None:
                return answer
            if self.clock() >= until:
                return None
            await asyncio.sleep(POLL_SECONDS)

    async def _close(self, aid: str, by: str) -> Answer | None:
        """Write an unanswered outcome (deny by ``by``). If an answer slipped in first, the
        rules refuse it: return that answer instead (the caller acts on it)."""
        outcome = {"allow": False, "by": by, "at": SERVER_TIMESTAMP}
        path = f"{self.path(aid)}/outcome"
        try:
            await self.write(self.db.set, path, outcome, verify=lambda: self._closed(path))
        except PermissionDenied:
            answer = Answer.parse(await self.call(self.db.get, f"{self.path(aid)}/answer"))
            if answer is None:
                raise
            return answer
        self.open.discard(aid)
        return None

    def _closed(self, path: str) -> bool:
        return self.db.get(path) is not None

    async def _act_on(self, aid: str, answer: Answer) -> Decision:
        name = self.names.get(answer.by) or answer.by[:8]
        outcome: dict[str, Any] = {"allow": answer.allow, "by": answer.by, "at": SERVER_TIMESTAMP}
        if answer.reason:
            outcome["reason"] = answer.reason
        path = f"{self.path(aid)}/outcome"
        try:
            await self.write(self.db.set, path, outcome, verify=lambda: self._closed(path))
            self.open.discard(aid)
        except FirebaseError as exc:  # the decision stands; the record is only history
            log.warning(
                "session %s: can't record the approval outcome: %s", for_log(self.sid), for_log(exc)
            )
        reason = answer.reason or ("" if answer.allow else f"denied by {name}")
        return Decision(answer.allow, reason, name)
