"""The REPL's side of the agent's tool requests, the owner's policy and attached files.

What it owns: which requests are waiting (and whether I may answer them), the
lines and toolbar rows they show, ``/approve``, ``/deny [reason]`` and the y/n
keys, ``/policy``, and the files ``/attach`` (or a path pasted alone on a line)
adds to the next message. ``ChatRepl`` routes events and commands here; every
database call goes through the session client, so the rules have the last word.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType

from ..session import events as ev
from ..session.approvals import APPROVERS, Approval
from ..session.attachments import IMAGE_TYPES, MAX_FILES, Attached, read_file
from ..session.errors import SessionError
from ..session.text import one_line, verbatim
from . import render

if TYPE_CHECKING:
    from .repl import ChatRepl

POLICY_USAGE = (
    "usage: /policy (show it) · /policy approvers owner|editors|author · "
    "/policy allow TOOL… · /policy ask TOOL… · /policy timeout SECONDS · /policy reset"
)


@dataclass
class Waiting:
    approval: Approval
    mine: bool
    who: str


class Asking:
    def __init__(self, repl: ChatRepl) -> None:
        self.repl = repl
        self.waiting: dict[tuple[str, str], Waiting] = {}
        self.files: list[Attached] = []

    # -- events ------------------------------------------------------------------------

    def on_event(self, event: ev.Event) -> RenderableType | None:
        if isinstance(event, ev.ApprovalRequested):
            a = event.approval
            self.waiting[a.key] = Waiting(a, event.mine, event.who)
            return render.approval_request(
                a,
                asked_by=self._name(a.author),
                mine=event.mine,
                who=event.who,
                now_ms=self.repl.server_now(),
            )
        if isinstance(event, ev.ApprovalDecided):
            self.waiting.pop(event.approval.key, None)
            by = event.by if event.by else "someone"
            return render.approval_decided(event.approval, allow=event.allow, by=by)
        if isinstance(event, ev.Synced):
            self.waiting.clear()  # the requests still open follow as ApprovalRequested
        elif isinstance(event, ev.TurnEnded):
            # a request of a turn that ended is over, answered or not
            for key in [k for k in self.waiting if k[0] == event.turn.mid]:
                self.waiting.pop(key, None)
        return None

    def forget(self) -> None:
        """Leaving the session: nothing of it is waiting for me any more."""
        self.waiting.clear()

    def _name(self, uid: str) -> str:
        state = self.repl.state
        member = state.members.get(uid) if state is not None else None
        return member.name if member is not None else uid[:8]

    def current(self, *, mine: bool) -> Waiting | None:
        """The oldest request still open (that I may answer, with ``mine``)."""
        now = self.repl.server_now()
        for w in sorted(self.waiting.values(), key=lambda w: w.approval.requested_at):
            if now >= w.approval.expires_at:
                continue
            if not mine or w.mine:
                return w
        return None

    def toolbar_rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        w = self.current(mine=False)
        if w is not None:
            a = w.approval
            what = f"{one_line(a.tool)}: {verbatim(a.summary, line=True)}"
            if len(what) > 80:
                what = what[:79] + "…"
            if w.mine:
                rows.append(
                    ("class:ask", f" ⚠ the agent asks: {what} │ y allow · n deny · /deny REASON\n")
                )
            else:
                rows.append(("class:typing", f" ⚠ waiting for {w.who} to approve {what}\n"))
        if self.files:
            shown = " ".join(
                render.attachment_label(f.name, f.media_type, f.size) for f in self.files
            )
            rows.append(
                ("class:typing", f" attached to your next message: {shown} (/attach --clear)\n")
            )
        return rows

    # -- answers -----------------------------------------------------------------------

    def answerable(self) -> bool:
        """y / n on an empty prompt answer a request (only when there is one for me)."""
        return self.current(mine=True) is not None

    async def answer(self, allow: bool, reason: str = "") -> None:
        sid = self.repl.need_session()
        w = self.current(mine=True)
        if w is None:
            other = self.current(mine=False)
            if other is not None:
                raise SessionError(f"only {other.who} may answer the agent's request")
            raise SessionError("the agent is not asking for anything now")
        a = w.approval
        await self.repl.call(
            self.repl.app.sessions.approvals.answer, sid, a.mid, a.aid, allow, reason
        )
        # everyone, me included, sees the decision when it lands ("✓ alice allowed …")

    async def cmd_approve(self, args: list[str]) -> None:
        if args:
            raise SessionError("usage: /approve (answers the agent's waiting request)")
        await self.answer(True)

    async def cmd_deny(self, args: list[str]) -> None:
        await self.answer(False, " ".join(args))

    # -- the policy ----------------------------------------------------------------------

    async def cmd_policy(self, args: list[str]) -> None:
        sid = self.repl.need_session()
        sessions = self.repl.app.sessions
        if not args:
            meta = await self.repl.call(sessions.meta, sid)
            self.repl.out(render.notice(f"• approvals: {render.policy_text(meta.policy)}"))
            return
        what, rest = args[0].lower(), args[1:]
        ops = sessions.approvals
        if what == "approvers" and len(rest) == 1 and rest[0] in APPROVERS:
            policy = await self.repl.call(lambda: ops.set_policy(sid, approvers=rest[0]))
        elif what in ("allow", "ask") and rest:
            tools = [t for arg in rest for t in arg.replace(",", " ").split()]
            kw = {"allow": tools} if what == "allow" else {"ask": tools}
            policy = await self.repl.call(lambda: ops.set_policy(sid, **kw))
        elif what == "timeout" and len(rest) == 1 and rest[0].isdigit():
            policy = await self.repl.call(lambda: ops.set_policy(sid, timeout_s=int(rest[0])))
        elif what == "reset" and not rest:
            policy = await self.repl.call(lambda: ops.set_policy(sid, reset=True))
        else:
            raise SessionError(POLICY_USAGE)
        self.repl.out(render.notice(f"• approvals: {render.policy_text(policy)}"))

    # -- attached files --------------------------------------------------------------------

    async def cmd_attach(self, args: list[str]) -> None:
        if args == ["--clear"]:
            self.files.clear()
            self.repl.out(render.notice("• no files attached"))
            return
        if not args:
            raise SessionError("usage: /attach PATH… (an image or a text file) · /attach --clear")
        for arg in args:
            self.add(await self.repl.call(read_file, arg))

    def add(self, file: Attached) -> None:
        if len(self.files) >= MAX_FILES:
            raise SessionError(
                f"at most {MAX_FILES} files per message: /attach --clear to start over"
            )
        self.files.append(file)
        self.repl.out(
            render.notice(
                f"• attached {render.attachment_label(file.name, file.media_type, file.size)}: "
                "it goes with your next message",
                "cyan",
            )
        )

    def pasted_path(self, line: str) -> str | None:
        """A line that is only a path to a file to attach (a dragged or pasted file): an
        existing file that is an image, or named with a folder (``./notes.txt``,
        ``~/shot.png``), one token (quotes and backslash escapes as a shell has them)."""
        try:
            parts = shlex.split(line.strip())
        except ValueError:
            return None
        if len(parts) != 1:
            return None
        raw = parts[0]
        p = Path(raw).expanduser()
        looks_like_path = "/" in raw or p.suffix.lower() in IMAGE_TYPES
        try:
            return raw if looks_like_path and p.is_file() else None
        except OSError:
            return None

    def take_files(self) -> list[Attached]:
        files, self.files = self.files, []
        return files

    def give_back(self, files: list[Attached]) -> None:
        """A send that failed: its files stay attached for the next try."""
        self.files[:0] = files
