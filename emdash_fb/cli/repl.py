"""``emdash-fb chat``: the interactive shared-session REPL (prompt_toolkit + rich).

The prompt runs on asyncio next to the session's live view, so incoming
events print above the prompt (``patch_stdout``) while the user types; the
agent's reply streams into the bottom toolbar and lands in the scrollback,
rendered as markdown, when it is complete. Database calls are blocking
(requests), so they run in threads and never stall the prompt.

Every state the session can be in has a true toolbar and a way out: an open
session (invite, who is online, queue, agent), a closed one ("closed
(read-only)"), one you were removed from ("removed from the session"), or none;
``/leave`` and ``/join CODE`` work from each of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console, RenderableType
from rich.text import Text

from ..firebase.errors import FirebaseError
from ..session import codes, paths, windows
from ..session import events as ev
from ..session.errors import (
    BadMessage,
    NoSession,
    NotAllowed,
    NotMember,
    SessionClosed,
    SessionError,
    TooManyWaiting,
)
from ..session.records import Message, Meta, SessionState
from ..session.text import layout, one_line, uid_tag
from . import render
from .asking import Asking
from .context import AppContext

T = TypeVar("T")

COMMANDS: dict[str, str] = {
    "/share": "share this session: create an invite code",
    "/join": "/join CODE — join another session",
    "/who": "who is here",
    "/leave": "leave this session (back to a private one)",
    "/status": "session, invite, members, queue and agent at a glance",
    "/history": "/history [N] [--full] — recent messages",
    "/cancel": "cancel your waiting or running message",
    "/approve": "let the agent use the tool it asks for (y on an empty prompt)",
    "/deny": "/deny [REASON] — tell the agent no (n on an empty prompt)",
    "/policy": "/policy — who answers the agent's requests, which tools need none (owner)",
    "/attach": "/attach PATH — an image or text file for your next message",
    "/mode": "/mode plan|code",
    "/role": "/role NAME|#tag editor|viewer (owner)",
    "/kick": "/kick NAME|#tag (owner)",
    "/invite": "/invite rotate|revoke|role editor|viewer (owner)",
    "/limit": "/limit N — messages each member may have waiting, 1-10 (owner)",
    "/close": "close the session for everyone, read-only from then on (owner; asks first)",
    "/help": "this list",
    "/quit": "leave the REPL (you stay a member)",
}
TYPING_SIGNAL_EVERY = 3.0  # seconds: at most one typing write per this interval
HEARTBEAT_EVERY = 15.0
MIN_REDRAW_SECONDS = 0.05
DOUBLE_CTRL_C = 2.0
CLOSE_CONFIRM_SECONDS = 10.0  # /close twice within this, or /close yes
# A refused send whose text is put back in the input line (the user edits it and
# sends again); other failures (network, a closed session) are not retried by hand.
KEEP_TEXT_ON = (BadMessage, NotAllowed, TooManyWaiting)
WAY_OUT = "/leave, /join CODE or /quit"


class SlashCompleter(Completer):
    def get_completions(self, document: Any, complete_event: Any) -> Any:
        text = document.text_before_cursor
        if not text.startswith("/") or " " in text:
            return
        for cmd, help_text in COMMANDS.items():
            if cmd.startswith(text):
                yield Completion(cmd, start_position=-len(text), display_meta=help_text)


class ChatRepl:
    def __init__(
        self,
        app: AppContext,
        *,
        join: str | None = None,
        resume: str | None = None,
        share: bool = False,
        new: bool = False,
        come_back: bool = True,
        console: Console | None = None,
    ) -> None:
        self.app = app
        self.join_code = join
        self.resume = resume
        self.share_at_start = share
        self.new_at_start = new
        #: say on quitting how to come back (not when the database goes away with us: the demo)
        self.come_back = come_back
        self._console = console
        self.sid: str | None = None
        self.view: Any = None
        self._view_task: asyncio.Task[None] | None = None
        self.connection = "connecting"
        self.agent = ev.AgentStatus("idle")
        self.stream_text = ""
        self.stream_for = ""
        self.my_positions: dict[str, int] = {}
        self.typing: dict[str, str] = {}
        self.last_typing_signal = 0.0
        self.last_ctrl_c = 0.0
        self._me: str | None = None
        self.quitting = False
        self._bg: list[asyncio.Task[Any]] = []
        self.prompt: PromptSession[str] | None = None
        #: the owner removed me from the session I follow (its view has stopped)
        self.removed = False
        self.left_elsewhere = False  # removed from it by our own leave in another terminal
        #: the session I follow said it closed (by its owner, idling, or going away)
        self.closed_seen = False
        self.mode_seen: str | None = None  # to announce mode changes
        self.close_asked: tuple[str, float] | None = None  # (sid, when) of an unconfirmed /close
        self.kept_input = ""  # a refused message, back in the next prompt
        self.kept_error = ""  # why, in the toolbar while that text is in the input
        self._preview: tuple[tuple[int, str], list[str]] | None = None
        self.asking = Asking(self)

    # -- plumbing --------------------------------------------------------------------

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = Console(file=sys.stdout, force_terminal=True, highlight=False)
        return self._console

    def out(self, renderable: RenderableType) -> None:
        # Behind patch_stdout rich can't see the terminal; ask it each time (resizes).
        self.console.width = max(20, shutil.get_terminal_size().columns)
        self.console.print(renderable)

    def fail(self, text: str) -> None:
        self.out(render.error(text))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def guarded(self, work: Awaitable[Any]) -> Any:
        """Run a command: user mistakes and network trouble become one red line."""
        try:
            return await work
        except (SessionError, FirebaseError) as exc:
            self.fail(str(exc))
        return None

    @property
    def me(self) -> str:
        # Read once: the profile's uid never changes, and auth.current() takes a
        # lock and may refresh over the network (this runs on every redraw).
        if self._me is None:
            self._me = self.app.auth.current().uid
        return self._me

    @property
    def state(self) -> SessionState | None:
        return (
            self.view.state
            if self.view is not None and self.view.deriver.tree is not None
            else None
        )

    # -- session lifecycle -------------------------------------------------------------

    async def start_session(self) -> None:
        """``--join CODE``, ``--session SID``, ``--share``, ``--new``, or (no flags) back into the
        profile's remembered session when it is still open and I am still in it."""
        sessions = self.app.sessions
        if self.join_code:
            joined = await self.call(sessions.join, self.join_code, 0)
            await self.follow(joined.session, f"joined session ({len(joined.members)} members)")
            return
        if self.resume:
            await self.follow(
                self.resume, self.welcome_back(self.resume, await self.meta_of(self.resume))
            )
            return
        if not self.share_at_start and not self.new_at_start and await self.resume_remembered():
            return
        await self.new_session(invite=self.share_at_start)

    async def meta_of(self, sid: str) -> Meta:
        """The session's meta (a small read: only members can make it), or NotMember."""
        meta = await self.call(self.app.sessions.meta, sid)
        if not meta.owner:
            raise NotMember(f"session {sid} does not exist (or you are not in it)")
        return meta

    async def resume_remembered(self) -> bool:
        """Follow the profile's remembered session again if it is open and I am a member;
        otherwise say why not (False: the caller starts a new one)."""
        try:
            sid = self.app.current_session()
        except NoSession:
            return False
        try:
            meta = await self.meta_of(sid)
        except NotMember as exc:  # gone, left, or removed (Kicked says so)
            self.out(render.notice(f"• your last session: {one_line(str(exc))}"))
            return False
        if not meta.is_open(self.app.sessions.now_ms()):
            self.out(render.notice("• your last session is closed (read-only)"))
            return False
        await self.follow(sid, self.welcome_back(sid, meta))
        return True

    def welcome_back(self, sid: str, meta: Meta) -> str:
        title = f" “{one_line(meta.title)}”" if meta.title else ""
        n = meta.member_count
        return f"back in session {sid}{title} ({n} member{'s' if n != 1 else ''})"

    async def new_session(self, *, invite: bool) -> None:
        shared = await self.call(lambda: self.app.sessions.share(invite=invite))
        await self.follow(
            shared.session,
            "new private session: /share to invite others" if not shared.invite else "",
        )
        if shared.invite:
            self.show_invite(shared.invite)

    async def follow(self, sid: str, hello: str) -> None:
        from ..session.view import SessionView

        if self.removed and self.sid is not None:
            await self.call(self.app.sessions.forget, self.sid)  # removed: nothing to follow
        await self.unfollow()
        self.sid = sid
        self.app.remember_session(sid)
        self.stream_text, self.stream_for, self.my_positions, self.typing = "", "", {}, {}
        self.agent = ev.AgentStatus("idle")
        self.removed = self.closed_seen = self.left_elsewhere = False
        self.mode_seen, self.close_asked = None, None
        if hello:
            self.out(render.notice(hello))
        self.view = SessionView(
            self.app.target, self.app.auth, self.app.sessions, sid, self.on_event
        )
        self._view_task = asyncio.create_task(self.view.run())
        with contextlib.suppress(FirebaseError):
            await self.call(self.app.sessions.heartbeat, sid)

    async def unfollow(self) -> None:
        if self.view is not None:
            self.view.stop()
        if self._view_task is not None:
            with contextlib.suppress(Exception):
                await self._view_task
        self.view, self._view_task, self.sid = None, None, None
        self.asking.forget()

    async def stop_following(self, sid: str) -> None:
        """Stop following ``sid``: after leaving it, or -- with no write at all -- a session I
        was removed from or a closed one (it accepts no writes and needs none: my membership
        is already gone, or frozen with the session). The session client forgets it and the
        profile no longer remembers it; anything else a client keeps of a session goes here."""
        await self.unfollow()
        await self.call(self.app.sessions.forget, sid)
        self.app.remember_session(None)  # `chat` would not bring me back to it

    def is_closed(self, state: SessionState | None = None) -> bool:
        """The session I follow is closed: read-only (by its owner, for idling, or gone)."""
        state = state if state is not None else self.state
        if self.closed_seen:
            return True
        return (
            state is not None
            and state.exists
            and not state.meta.is_open(self.app.sessions.now_ms())
        )

    def show_invite(self, code: str) -> None:
        from .joinline import browser_link, join_command

        self.out(Text.assemble(Text("invite code: ", style="bold"), Text(code, style="bold green")))
        # Plain print, not rich: one unbroken line another machine can paste as it is.
        print(f"others run: {join_command(self.app.target, code)}", flush=True)
        print(f"or open: {browser_link(self.app.target, code)}", flush=True)

    # -- events ------------------------------------------------------------------------

    def on_event(self, event: ev.Event) -> None:
        try:
            self._render_event(event)
        except Exception as exc:  # rendering must never take the view down
            self.fail(f"could not show an update: {exc}")
        if self.prompt is not None and self.prompt.app.is_running:
            self.prompt.app.invalidate()

    def server_now(self) -> int:
        """Now by the server's clock, as this terminal's live view measured it."""
        offset = self.view.deriver.clock_offset_ms if self.view is not None else 0
        return int(time.time() * 1000) + offset

    def _render_event(self, event: ev.Event) -> None:
        me = self.me
        shown = self.asking.on_event(event)
        if shown is not None:
            self.out(shown)
            return
        if isinstance(event, ev.AgentChanged):
            return  # the toolbar and /status read it from the state
        if isinstance(event, ev.Synced):
            self.mode_seen = event.state.meta.mode
            self._show_recent(event.state)
        elif isinstance(event, ev.MessagePosted):
            m = event.message
            if m.role == "assistant":
                asked = self._asker(m.reply_to)
                self.stream_text, self.stream_for = "", ""
                self.out(render.message(m, asked))
            elif m.uid != me:
                self.typing.pop(m.uid, None)  # they pressed Enter: no longer typing
                self.out(render.message(m))
        elif isinstance(event, ev.MessageCancelled):
            self._message_cancelled(event.message)
        elif isinstance(event, ev.QueueChanged):
            self._queue_changed(event)
        elif isinstance(event, ev.TurnStarted):
            self.stream_text, self.stream_for = "", event.asked_by
            self.my_positions.pop(event.turn.mid, None)
        elif isinstance(event, ev.AgentStatus):
            self._agent_status(event)
        elif isinstance(event, ev.ReplyDelta):
            self.stream_text += event.text
        elif isinstance(event, ev.ToolStarted):
            self.out(render.tool_line(event.tool.name, event.tool.detail))
        elif isinstance(event, ev.ToolFinished):
            first = event.tool.output.strip().splitlines()[0] if event.tool.output.strip() else ""
            self.out(
                render.tool_line(event.tool.name, first[:120], done=event.tool.state == "done")
            )
        elif isinstance(event, ev.TurnEnded):
            turn = event.turn
            if turn.state in ("failed", "cancelled") and self._has_reply(turn.mid):
                pass  # the reply just shown says so, with the reason: once is enough
            elif turn.state == "failed":
                self.fail(f"the agent failed: {turn.error or 'unknown error'}")
            elif turn.state == "cancelled":
                self.out(render.notice("• the reply was cancelled", "yellow"))
            elif turn.state == "interrupted":
                self.out(render.notice("• the agent was interrupted; it will retry", "yellow"))
        elif isinstance(event, ev.MemberJoined):
            if event.member.uid != me:
                self.out(render.member_notice(event.member, "joined", "green"))
        elif isinstance(event, ev.MemberLeft):
            self.typing.pop(event.member.uid, None)
            if event.member.uid != me:
                self.out(
                    render.member_notice(
                        event.member, "was removed" if event.kicked else "left", "yellow"
                    )
                )
        elif isinstance(event, ev.MemberAway):
            if event.member.uid != me:
                self.out(render.member_notice(event.member, "is away"))
        elif isinstance(event, ev.MemberBack):
            if event.member.uid != me:
                self.out(render.member_notice(event.member, "is back"))
        elif isinstance(event, ev.RoleChanged):
            who = "you are" if event.member.uid == me else f"{one_line(event.member.name)} is"
            self.out(render.notice(f"• {who} now {event.member.role}"))
        elif isinstance(event, ev.Typing):
            if event.typing:
                self.typing[event.member.uid] = event.member.name
            else:
                self.typing.pop(event.member.uid, None)
        elif isinstance(event, ev.MetaChanged):
            # the prompt and toolbar read meta live; a new mode is news for everyone
            if self.mode_seen is not None and event.meta.mode != self.mode_seen:
                self.out(render.notice(f"• the mode is now {one_line(event.meta.mode)}"))
            self.mode_seen = event.meta.mode
        elif isinstance(event, ev.SessionClosedEvent):
            self.closed_seen = True
            if self.stream_text:
                # no runner may write to a closed session: the reply ends here, unfinished
                now = int(time.time() * 1000)
                cut = Message("", "assistant", "", "agent", self.stream_text, now, "cut off")
                self.out(render.message(cut, self.stream_for or None))
                self.stream_text, self.stream_for = "", ""
            self.out(
                render.notice(
                    f"• this session is closed: it is read-only now ({WAY_OUT})", "yellow"
                )
            )
            self._record_idle_close()
        elif isinstance(event, ev.NoLongerMember):
            self.removed = self.left_elsewhere = True
            self.stream_text, self.stream_for, self.typing = "", "", {}
            self.fail(f"you are no longer a member of this session ({WAY_OUT})")
        elif isinstance(event, ev.YouWereKicked):
            self.removed = True
            self.stream_text, self.stream_for, self.typing = "", "", {}
            self.fail(f"the owner removed you from this session ({WAY_OUT})")
        elif isinstance(event, ev.ConnectionChanged):
            before, self.connection = self.connection, event.status
            if event.status == "reconnecting" and before == "live":
                self.out(render.notice("• connection lost; reconnecting…", "yellow"))
            elif event.status == "live" and before == "reconnecting":
                self.out(render.notice("• reconnected", "green"))

    def _record_idle_close(self) -> None:
        """A session that went idle is closed by the rules' clock; its owner's client writes
        ``status: closed`` (and retires the invite), as the data model says."""
        state = self.state
        if state is None or state.meta.owner != self.me or state.meta.status != "open":
            return
        if not state.meta.owner:
            return
        task = asyncio.get_running_loop().create_task(
            self.guarded(self.call(self.app.sessions.close, state.sid))
        )
        self._bg.append(task)

    def _agent_status(self, event: ev.AgentStatus) -> None:
        before, self.agent = self.agent, event
        state = self.state
        if event.state == "stalled" and before.state != "stalled":
            turn = state.turns.get(event.mid or "") if state is not None else None
            if turn is not None and turn.cancel_by == self.me:
                # we asked to cancel it and no runner is left to honour that: end it now
                task = asyncio.get_running_loop().create_task(self.guarded(self.cancel_mine()))
                self._bg.append(task)
            else:
                self.out(
                    render.notice(
                        "• the agent stopped answering (its runner is gone); "
                        "a new runner will retry, or /cancel it",
                        "yellow",
                    )
                )
        elif event.state == "offline" and before.state not in ("offline", "stalled"):
            self.out(render.notice("• agent offline: no runner is serving this project", "yellow"))

    def _message_cancelled(self, message: Message) -> None:
        state = self.state
        if state is not None and message.id in state.turns:
            return  # it had started: its turn's end (or its reply) tells how it ended
        who = (
            "your message" if message.uid == self.me else f"a message from {one_line(message.name)}"
        )
        self.out(render.notice(f"• {who} was withdrawn"))

    def _has_reply(self, mid: str) -> bool:
        state = self.state
        key = paths.reply_key(mid)
        return state is not None and any(m.id == key for m in state.messages)

    def _asker(self, mid: str | None) -> str | None:
        state = self.state
        if state is None or mid is None:
            return None
        return next((m.name for m in state.messages if m.id == mid), None)

    def _show_recent(self, state: SessionState, n: int = 20) -> None:
        recent = state.messages[-n:]
        if not recent:
            return
        if len(state.messages) > n:
            self.out(
                render.notice(
                    f"… {len(state.messages) - n} earlier messages (/history to see more)"
                )
            )
        elif len(state.messages) >= windows.RECENT:  # the view starts with the newest only
            self.out(render.notice("… earlier messages: /history N shows the last N"))
        by_id = {m.id: m.name for m in state.messages}
        for m in recent:
            self.out(render.message(m, by_id.get(m.reply_to or ""), full=False))

    def _queue_changed(self, event: ev.QueueChanged) -> None:
        me = self.me
        ahead: list[str] = []
        for item, pos in event.items:
            mine = item.uid == me and item.state == "queued" and pos > 1
            if mine and self.my_positions.get(item.mid) != pos:
                self.my_positions[item.mid] = pos
                behind = one_line(ahead[-1]) if ahead else "the agent"
                self.out(render.notice(f"• queued #{pos} behind {behind}", "cyan"))
            ahead.append(item.name)
        live = {item.mid for item, _ in event.items}
        for mid in list(self.my_positions):
            if mid not in live:
                self.my_positions.pop(mid)

    # -- prompt and toolbar ---------------------------------------------------------------

    def prompt_text(self) -> FormattedText:
        state = self.state
        mode = state.meta.mode if state is not None else "code"
        parts = [("class:mode", f"[{mode}] ")]
        if self.sid is None:
            parts = [("class:mode", "[no session] ")]
        elif self.removed:
            parts.append(("class:gone", "[removed] "))
        elif state is not None and self.is_closed(state):
            parts.append(("class:gone", "[closed] "))
        elif state is not None and state.meta.invite_code:
            parts.append(("class:shared", f"[shared:{len(state.members)}] "))
        elif state is not None and len(state.members) > 1:
            parts.append(("class:shared", f"[members:{len(state.members)}] "))
        parts.append(("", "> "))
        return FormattedText(parts)

    def agent_state(self) -> str:
        """The agent's status as the live view derives it (working / stalled / idle / offline)."""
        return self.agent.state

    def columns(self) -> int:
        """The terminal's width, as prompt_toolkit (which draws the toolbar) sees it."""
        if self.prompt is not None and self.prompt.app.is_running:
            return max(20, self.prompt.app.output.get_size().columns)
        return max(20, shutil.get_terminal_size().columns)

    def online(self, state: SessionState) -> int:
        """Members with a fresh heartbeat, and me: the same people `/who` calls "here"."""
        now, me = self.app.sessions.now_ms(), self.me
        return sum(
            1
            for uid in state.members
            if uid == me or (uid in state.presence and not state.presence[uid].is_away(now))
        )

    def status_line(self) -> str:
        """The toolbar's last row: only what is true of the session now."""
        state = self.state
        if self.sid is None:
            return " no session │ /join CODE or /quit "
        if self.removed:
            what = "no longer a member" if self.left_elsewhere else "removed from the session"
            return f" {what} │ {WAY_OUT} "
        if state is None:
            return f" {self.connection}… "
        if self.is_closed(state):
            return f" closed (read-only) │ {WAY_OUT} "
        code = state.meta.invite_code
        invite = f"invite {codes.display(code)}" if code else "private"
        conn = "" if self.connection == "live" else f" │ {self.connection}…"
        name = state.agent.describe()
        agent = f"{self.agent_state()} · {one_line(name)}" if name else self.agent_state()
        return (
            f" {invite} │ {self.online(state)} online │ queue {len(state.queue)}"
            f" │ agent {agent}{conn} "
        )

    def preview(self) -> list[str]:
        """The streaming reply's last rows (cached: the toolbar redraws far more often than
        the reply grows)."""
        key = (self.columns(), self.stream_text)
        if self._preview is None or self._preview[0] != key:
            self._preview = (key, render.preview_rows(self.stream_text, key[0]))
        return self._preview[1]

    def toolbar(self) -> FormattedText:
        rows: list[tuple[str, str]] = []
        if self.stream_text:
            # The newest text of the reply, wrapped to the terminal, behind the gutter.
            who = f" → {one_line(self.stream_for)}" if self.stream_for else ""
            body = "".join(f"\n{row}" for row in self.preview())
            rows.append(("class:stream", f" agent{who} ▸ {body}\n"))
        if self.kept_error and self.prompt is not None and self.prompt.default_buffer.text:
            # a long text in the input may push the error itself off the screen
            shown = layout(" ✗ ", one_line(self.kept_error), width=self.columns())
            rows.append(("class:error", f"{shown}\n"))
        rows += self.asking.toolbar_rows()
        if self.typing:
            names = ", ".join(one_line(n) for n in self.typing.values())
            verb = "is" if len(self.typing) == 1 else "are"
            rows.append(("class:typing", f" {names} {verb} typing…\n"))
        rows.append(("class:toolbar", self.status_line()))
        return FormattedText(rows)

    def on_text_changed(self, _buffer: Any) -> None:
        """Typing signal, throttled: at most one write per TYPING_SIGNAL_EVERY seconds."""
        if self.sid is None or not self.prompt or not self.prompt.default_buffer.text:
            return
        if self.removed or self.is_closed():
            return  # nobody is told: the session takes no writes from me
        text = self.prompt.default_buffer.text
        if text.startswith("/") and not text.startswith("//"):
            return
        now = time.monotonic()
        if now - self.last_typing_signal < TYPING_SIGNAL_EVERY:
            return
        self.last_typing_signal = now
        sid = self.sid
        task = asyncio.get_running_loop().create_task(self.call(self.app.sessions.typing, sid))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def key_bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-c")
        def _(event: Any) -> None:
            buf = event.app.current_buffer
            if buf.text:
                buf.reset()
                self.last_ctrl_c = 0.0
                return
            now = time.monotonic()
            if now - self.last_ctrl_c < DOUBLE_CTRL_C:
                self.last_ctrl_c = 0.0
                asyncio.get_running_loop().create_task(self.guarded(self.cancel_mine()))
            else:
                self.last_ctrl_c = now
                self.out(
                    render.notice("(Ctrl-C again to cancel your running message, Ctrl-D to quit)")
                )

        empty_and_asked = Condition(
            lambda: (
                self.prompt is not None
                and not self.prompt.default_buffer.text
                and self.asking.answerable()
            )
        )

        @kb.add("y", filter=empty_and_asked)
        def _allow(event: Any) -> None:
            asyncio.get_running_loop().create_task(self.guarded(self.asking.answer(True)))

        @kb.add("n", filter=empty_and_asked)
        def _deny(event: Any) -> None:
            asyncio.get_running_loop().create_task(self.guarded(self.asking.answer(False)))

        return kb

    # -- main loop ------------------------------------------------------------------------

    async def run(self) -> int:
        from prompt_toolkit.styles import Style

        style = Style.from_dict(
            {
                "mode": "ansicyan bold",
                "shared": "ansigreen bold",
                "toolbar": "reverse",
                "stream": "noreverse ansibrightblack",
                "typing": "noreverse ansiyellow",
                "gone": "ansiyellow bold",
                "error": "noreverse ansired bold",
                "ask": "noreverse ansiyellow bold",
                "bottom-toolbar": "noreverse",
            }
        )
        with patch_stdout(raw=True):
            self._console = None  # bind to the patched stdout
            self.prompt = PromptSession(
                history=InMemoryHistory(),
                completer=SlashCompleter(),
                key_bindings=self.key_bindings(),
                style=style,
                complete_while_typing=True,
            )
            self.prompt.default_buffer.on_text_changed += self.on_text_changed
            # A streaming reply invalidates the screen per chunk; redraw at most 20 times a
            # second (what the eye can follow), so a fast reply costs a bounded CPU.
            self.prompt.app.min_redraw_interval = MIN_REDRAW_SECONDS
            try:
                await self.start_session()
            except (SessionError, FirebaseError) as exc:
                self.fail(str(exc))
                if self.join_code or self.resume:
                    return 1
            self._bg = [asyncio.create_task(self._heartbeat())]
            try:
                while not self.quitting:
                    default, self.kept_input = self.kept_input, ""
                    if default:  # a refused message coming back is not typing
                        self.last_typing_signal = time.monotonic()
                    try:
                        line = await self.prompt.prompt_async(
                            self.prompt_text,
                            bottom_toolbar=self.toolbar,
                            refresh_interval=0.25,
                            default=default,
                        )
                    except EOFError:
                        break
                    except KeyboardInterrupt:
                        continue
                    await self.handle(line)
            finally:
                for task in self._bg:
                    task.cancel()
                farewell = self.farewell()
                await self.unfollow()
        if farewell:  # after the REPL is gone, so it stays on the screen
            print(farewell, flush=True)
        return 0

    def farewell(self) -> str:
        """One line on how to come back to the session I follow (empty: there is none)."""
        sid, state = self.sid, self.state
        if sid is None or self.removed or not self.come_back:
            return ""
        profile = "" if self.app.profile == "default" else f" --profile {self.app.profile}"
        if self.is_closed(state):
            return f"the session is closed; its history: emdash-fb{profile} --session {sid} history"
        return f"back with: emdash-fb{profile} chat   (or: emdash-fb{profile} --session {sid} chat)"

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            if self.sid is not None and not self.removed and not self.is_closed():
                with contextlib.suppress(FirebaseError, SessionError):
                    await self.call(self.app.sessions.heartbeat, self.sid)

    # -- input ------------------------------------------------------------------------------

    async def handle(self, line: str) -> None:
        self.kept_error = ""
        text = line.strip()
        if not text:
            return
        path = self.asking.pasted_path(text) if self.sid is not None else None
        if path is not None:  # a file dragged or pasted alone on a line: attach it
            await self.guarded(self.asking.cmd_attach([path]))
            return
        if not text.startswith("/") or text.startswith("//"):
            # `//...` is a message that starts with `/` (a path, say): one slash is dropped
            body = line.lstrip()[1:] if text.startswith("//") else line
            await self.send_line(body.rstrip("\n"), line)
            return
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = text.split()
        cmd, args = parts[0].lower(), parts[1:]
        handler = self.commands().get(cmd)
        if handler is None:
            # kept: a typo to fix, or a pasted text that starts with a path (// sends it)
            why = f"unknown command {one_line(cmd)}: /help lists them; //… sends a line starting with /"
            self.fail(why)
            self.kept_input, self.kept_error = line, why
            return
        await self.guarded(handler(args))

    def commands(self) -> dict[str, Callable[[list[str]], Awaitable[None]]]:
        return {
            "/share": self.cmd_share,
            "/join": self.cmd_join,
            "/who": self.cmd_who,
            "/leave": self.cmd_leave,
            "/status": self.cmd_status,
            "/history": self.cmd_history,
            "/cancel": self.cmd_cancel,
            "/approve": self.asking.cmd_approve,
            "/deny": self.asking.cmd_deny,
            "/policy": self.asking.cmd_policy,
            "/attach": self.asking.cmd_attach,
            "/mode": self.cmd_mode,
            "/role": self.cmd_role,
            "/kick": self.cmd_kick,
            "/invite": self.cmd_invite,
            "/limit": self.cmd_limit,
            "/close": self.cmd_close,
            "/help": self.cmd_help,
            "/quit": self.cmd_quit,
            "/exit": self.cmd_quit,
        }

    def need_session(self) -> str:
        if self.sid is None:
            raise SessionError("no session: /join CODE, or /quit")
        if self.removed:
            raise SessionError(f"the owner removed you from this session ({WAY_OUT})")
        return self.sid

    async def send(self, text: str) -> None:
        # The queue position is shown by the QueueChanged event this write causes.
        sid = self.need_session()
        files = self.asking.take_files()
        try:
            await self.call(self.app.sessions.send, sid, text, files)
        except BaseException:
            self.asking.give_back(files)
            raise

    async def send_line(self, text: str, typed: str) -> None:
        """Send ``text``; when the session refuses it for a reason the user can act on (too
        long, not allowed, too many waiting), ``typed`` comes back in the next prompt."""
        try:
            await self.send(text)
        except KEEP_TEXT_ON as exc:
            self.fail(f"{exc} (your text is back in the input: edit it, or Ctrl-C clears it)")
            self.kept_input, self.kept_error = typed, f"{exc}: edit it, or Ctrl-C clears it"
        except (SessionError, FirebaseError) as exc:
            self.fail(str(exc))

    async def cmd_share(self, _args: list[str]) -> None:
        sid = self.need_session()
        state = self.state
        if state is not None and state.meta.invite_code:
            self.show_invite(codes.display(state.meta.invite_code))
            return
        self.show_invite(await self.call(self.app.sessions.rotate_invite, sid))

    async def cmd_join(self, args: list[str]) -> None:
        if len(args) != 1:
            raise SessionError("usage: /join CODE (codes look like ABCDE-FGHJK)")
        joined = await self.call(self.app.sessions.join, args[0], 0)
        await self.follow(joined.session, f"joined session ({len(joined.members)} members)")

    async def cmd_who(self, _args: list[str]) -> None:
        people = await self.call(self.app.sessions.who, self.need_session())
        for p in people:
            mine = p.member.uid == self.me  # here, as the toolbar counts me, whatever my heartbeat
            status = "away" if p.away and not mine else ("typing…" if p.typing else "here")
            line = Text.assemble(
                "  ",
                render.tagged_name(p.member.name, p.member.uid),
                Text(f"  {p.member.role}, {status}", style="dim"),
            )
            if mine:
                line.append(" (you)", style="dim")
            self.out(render.Guttered(line))

    async def cmd_leave(self, _args: list[str]) -> None:
        """Give up the membership (a write); from a session I was removed from, or a closed
        one, just stop following it (no write is possible or needed). Then a private one."""
        if self.sid is None:
            raise SessionError("you are in no session: /join CODE, or /quit")
        sid = self.sid
        if self.removed:
            said = "• you left the session you were removed from"
        elif self.is_closed():
            said = "• you left the closed session"
        else:
            try:
                await self.call(self.app.sessions.leave, sid)
                said = "• you left the session"
            except SessionClosed:  # it went idle meanwhile
                said = "• you left the closed session"
            except NotMember:  # removed (or gone) before the view could say so
                said = "• you left the session"
        await self.stop_following(sid)
        self.out(render.notice(said))
        await self.private_session()

    async def private_session(self) -> None:
        """A new private session after leaving, if I may own sessions; else none, and how
        to get into one."""
        try:
            await self.new_session(invite=False)
        except NotAllowed:
            self.out(render.notice("• no session now: /join CODE to join one, or /quit"))

    async def cmd_status(self, _args: list[str]) -> None:
        sid = self.need_session()
        state = self.state or await self.call(self.app.sessions.state, sid)
        join_role = await self.call(self.app.sessions.invite_role, state.meta)
        self.out(
            render.status_panel(
                state,
                me=self.me,
                agent=self.agent_state(),
                connection=self.connection,
                now_ms=self.app.sessions.now_ms(),
                join_role=join_role,
            )
        )

    async def cmd_history(self, args: list[str]) -> None:
        full = "--full" in args
        rest = [a for a in args if a != "--full"]
        limit = 20
        if rest:
            if not rest[0].isdigit() or int(rest[0]) < 1:
                raise SessionError("usage: /history [N] [--full]")
            limit = int(rest[0])
        msgs = await self.call(self.app.sessions.history, self.need_session(), limit)
        by_id = {m.id: m.name for m in msgs}
        if not msgs:
            self.out(render.notice("(no messages yet)"))
        for m in msgs:
            self.out(render.message(m, by_id.get(m.reply_to or ""), full=full))

    async def cancel_mine(self) -> None:
        state = self.state
        if state is None:
            raise SessionError("nothing to cancel")
        me = self.me
        mine = [q for q in state.queue if q.uid == me]
        running = [q for q in mine if q.state == "running"]
        target = (running or mine[-1:] or [None])[0]
        if target is None:
            raise SessionError("you have no waiting or running message to cancel")
        outcome = await self.call(self.app.sessions.cancel, state.sid, target.mid)
        if outcome == "stopping":
            self.out(render.notice("• cancelling your running message…", "yellow"))
        # "skipped" / "cancelled": the withdrawal or the turn's end, which every member
        # sees as it happens, says so (once)

    async def cmd_cancel(self, _args: list[str]) -> None:
        await self.cancel_mine()

    async def cmd_mode(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in ("plan", "code"):
            raise SessionError("usage: /mode plan|code")
        sid = self.need_session()
        state = self.state
        if state is not None and state.meta.mode == args[0]:
            self.out(render.notice(f"• the mode is already {args[0]}"))
            return
        # everyone, me included, is told by the change itself ("• the mode is now plan")
        await self.call(self.app.sessions.set_mode, sid, args[0])

    def _member_by_name(self, name: str) -> str:
        state = self.state
        if state is None:
            raise SessionError("no session")
        tagged = name.startswith("#") and len(name) > 1
        matches = [
            m
            for m in state.members.values()
            if m.name.lower() == name.lower()
            or m.uid == name
            or (tagged and uid_tag(m.uid) == name)
        ]
        if not matches:
            raise SessionError(f"no member called {name!r}: /who lists them")
        if len(matches) > 1:
            raise SessionError(
                f"several members are called {name!r}: use their #tag (/who shows it) or uid"
            )
        return matches[0].uid

    async def cmd_role(self, args: list[str]) -> None:
        if len(args) != 2 or args[1] not in ("editor", "viewer"):
            raise SessionError("usage: /role NAME editor|viewer")
        await self.call(
            self.app.sessions.set_role, self.need_session(), self._member_by_name(args[0]), args[1]
        )

    async def cmd_kick(self, args: list[str]) -> None:
        if len(args) != 1:
            raise SessionError("usage: /kick NAME")
        new = await self.call(
            self.app.sessions.kick, self.need_session(), self._member_by_name(args[0])
        )
        if new:
            self.out(render.notice("• the invite they knew no longer works; the new one is:"))
            self.show_invite(new)

    async def cmd_invite(self, args: list[str]) -> None:
        sid = self.need_session()
        if args == ["rotate"]:
            self.show_invite(await self.call(self.app.sessions.rotate_invite, sid))
        elif args == ["revoke"]:
            await self.call(self.app.sessions.revoke_invite, sid)
            self.out(render.notice("• invite revoked: nobody new can join until /invite rotate"))
        elif len(args) == 2 and args[0] == "role" and args[1] in ("editor", "viewer"):
            await self.call(self.app.sessions.set_join_role, sid, args[1])
            self.out(render.notice(f"• people who join from now on are {args[1]}s"))
        else:
            raise SessionError("usage: /invite rotate|revoke|role editor|viewer")

    async def cmd_limit(self, args: list[str]) -> None:
        if len(args) != 1 or not args[0].isdigit():
            raise SessionError("usage: /limit N (messages each member may have waiting, 1-10)")
        await self.call(self.app.sessions.set_max_queued, self.need_session(), int(args[0]))
        self.out(render.notice(f"• each member may now have {int(args[0])} messages waiting"))

    async def cmd_close(self, args: list[str]) -> None:
        """Close for everyone, after asking: `/close` twice within 10 s, or `/close yes`."""
        if args not in ([], ["yes"]):
            raise SessionError("usage: /close (then /close again to confirm), or /close yes")
        sid = self.need_session()
        state = self.state or await self.call(self.app.sessions.state, sid)
        if self.is_closed(state):
            self.out(render.notice(f"• this session is already closed (read-only): {WAY_OUT}"))
            return
        if state.meta.owner != self.me:
            raise NotAllowed("only the session owner can close the session")
        asked = self.close_asked
        now = time.monotonic()
        if args != ["yes"] and (
            asked is None or asked[0] != sid or now - asked[1] > CLOSE_CONFIRM_SECONDS
        ):
            self.close_asked = (sid, now)
            self.out(
                render.notice(
                    "close this session for everyone? it becomes read-only: "
                    f"/close again within {CLOSE_CONFIRM_SECONDS:.0f} s, or /close yes",
                    "yellow",
                )
            )
            return
        self.close_asked = None
        await self.call(self.app.sessions.close, sid)
        # the session's change tells everyone, me included ("• this session is closed…")

    async def cmd_help(self, _args: list[str]) -> None:
        for cmd, text in COMMANDS.items():
            self.out(Text.assemble(Text(f"  {cmd:<9}", style="bold"), Text(text, style="dim")))
        self.out(
            render.notice(
                "  a plain line goes to the agent · //text sends a line starting with /"
                " (//usr/bin/python … sends /usr/bin/python …)"
            )
        )
        self.out(render.notice("  Ctrl-C clears · Ctrl-C twice cancels · Ctrl-D quits"))

    async def cmd_quit(self, _args: list[str]) -> None:
        self.quitting = True
