"""Scriptable commands: share, join, who, sessions, send, history, cancel, leave, config.

Each takes ``--json`` and then prints exactly one JSON document on stdout.
User mistakes exit non-zero with one line on stderr (see ``main.run_guarded``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import typer

from ..session import codes
from ..session.attachments import read_file
from ..session.events import (
    Event,
    MessagePosted,
    ReplyDelta,
    Synced,
    TurnEnded,
    TurnStarted,
    YouWereKicked,
)
from ..session.records import Message
from ..session.text import GUTTER, cell_width, clean, layout, one_line, uid_tag
from ..webview import web_link
from .context import AppContext
from .joinline import browser_link

JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def ctx_of(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif human is not None:
        sys.stdout.write(human + ("" if human.endswith("\n") else "\n"))
    sys.stdout.flush()


def _clock(ms: int) -> str:
    if not ms:
        return "--:--"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M")


def terminal_width() -> int | None:
    """The terminal's columns when stdout is one (text is folded to fit), else None."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def render_message(m: Message, width: int | None = None) -> str:
    """``[HH:MM] name: first line``, every further line behind the gutter ``  │ ``.

    With ``width`` (stdout is a terminal) long lines are folded behind the gutter
    too, so nothing the terminal would wrap starts at column 0.
    """
    who = "agent" if m.role == "assistant" else (one_line(m.name) or m.uid[:8])
    suffix = " (cancelled)" if m.state == "cancelled" else ""
    return layout(f"[{_clock(m.at)}] {who}: ", m.text + suffix, width=width)


class ReplyPrinter:
    """Streams a reply to stdout as ``agent: first line``, every further line behind the
    gutter; on a terminal (``width``) rows are folded behind the gutter as they fill."""

    def __init__(self, width: int | None) -> None:
        self.width = width
        self.column = 0
        self.started = False

    def write(self, chunk: str) -> None:
        out: list[str] = []
        if not self.started:
            self.started = True
            out.append("agent: ")
            self.column = len("agent: ")
        for ch in clean(chunk):
            if ch == "\n":
                out.append("\n" + GUTTER)
                self.column = len(GUTTER)
                continue
            if ch == "\t":
                ch = " " * (8 - self.column % 8)
            w = len(ch) if ch.isspace() else cell_width(ch)
            if self.width is not None and self.column + w > self.width:
                out.append("\n" + GUTTER)
                self.column = len(GUTTER)
            out.append(ch)
            self.column += w
        sys.stdout.write("".join(out))
        sys.stdout.flush()


def share(
    ctx: typer.Context,
    title: str = typer.Option("", "--title", help="A title for the session."),
    join_role: str = typer.Option(
        "editor", "--join-role", help="What people who join get: editor or viewer."
    ),
    max_queued: int = typer.Option(
        5, "--max-queued", min=1, max=10, help="Messages each member may have waiting."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Create a shared session and print its invite code."""
    app = ctx_of(ctx)
    shared = app.sessions.share(title, join_role=join_role, max_queued=max_queued)
    app.remember_session(shared.session)
    link = browser_link(app.target, shared.invite)
    web = web_link(app.target, codes.normalize(shared.invite) or shared.invite)
    emit(
        {"session": shared.session, "invite": shared.invite, "join_role": join_role, "web": web},
        as_json,
        f"shared session {shared.session}\ninvite code: {shared.invite} (joiners are "
        f"{join_role}s)\nothers join with: emdash-fb join {shared.invite}\n"
        f"or in a browser (as viewers): {link}",
    )


def join(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Invite code."),
    limit: int = typer.Option(
        20, "--limit", min=0, help="How many of the latest messages to show (`history` pages back)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Join a session by invite code (rejoining keeps your role)."""
    app = ctx_of(ctx)
    joined = app.sessions.join(code, limit)
    app.remember_session(joined.session)
    lines = [f"joined session {joined.session} ({len(joined.members)} members)"]
    width = terminal_width()
    lines += [render_message(m, width) for m in joined.messages]
    emit(
        {
            "session": joined.session,
            "members": [{"uid": m.uid, "name": m.name, "role": m.role} for m in joined.members],
            "messages": [m.to_json() for m in joined.messages],
        },
        as_json,
        "\n".join(lines),
    )


def who(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List the members of the current session."""
    app = ctx_of(ctx)
    people = app.sessions.who(app.current_session())
    lines = []
    for p in people:
        status = "away" if p.away else ("typing" if p.typing else "here")
        name = one_line(p.member.name)
        lines.append(f"{name} {uid_tag(p.member.uid)}  {p.member.role}  {status}")
    # "tag" tells apart people with similar names: it is what the REPL's /who shows.
    emit(
        [{**p.to_json(), "tag": uid_tag(p.member.uid)} for p in people],
        as_json,
        "\n".join(lines),
    )


def send(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="The message."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the agent's reply."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait with --wait."),
    attach: list[Path] = typer.Option(
        [],
        "--attach",
        metavar="PATH",
        help="An image or text file to send with it (repeatable, up to 4).",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Send a message to the agent through the session's queue."""
    app = ctx_of(ctx)
    sid = app.current_session()
    files = [read_file(p) for p in attach]
    sent = app.sessions.send(sid, text, files)
    result: dict[str, Any] = {"message": sent.message, "position": sent.position}
    if not wait:
        emit(result, as_json, f"queued as #{sent.position} (message {sent.message})")
        return
    if not as_json:
        sys.stdout.write(f"queued as #{sent.position} (message {sent.message})\n")
        sys.stdout.flush()
    reply = asyncio.run(_wait_for_reply(app, sid, sent.message, timeout, stream=not as_json))
    result["reply"] = reply
    if as_json:
        emit(result, True)
    elif reply["state"] != "done":
        sys.stdout.write("\n" + layout(f"[{reply['state']}] ", reply.get("error") or "") + "\n")
    if reply["state"] == "timeout":
        raise typer.Exit(3)


async def _wait_for_reply(
    app: AppContext, sid: str, mid: str, timeout: float, *, stream: bool
) -> dict[str, Any]:
    """Follow ``mid`` to its final state, through interruptions and retries.

    With ``stream`` the reply is printed as it arrives; if the agent is
    interrupted and answers again, that is said and the new attempt printed
    from its start, and if what was printed differs from the final text in any
    way, the final text is printed once more, whole. The result's ``text`` is
    always exactly the final reply.
    """
    from ..session.view import SessionView  # aiohttp: only when following a session

    done = asyncio.Event()
    width = terminal_width()
    printer = ReplyPrinter(width)
    printed: list[str] = []  # what this attempt's stream showed so far
    reply: dict[str, Any] = {"state": "timeout", "text": "", "id": None, "error": None}

    def restart() -> None:
        nonlocal printer
        if stream and printer.started:
            sys.stdout.write("\n(the agent was interrupted and is answering again)\n")
        printer = ReplyPrinter(width)
        printed.clear()

    def finish(text: str) -> None:
        reply["text"] = text
        if stream:
            if "".join(printed) != text:
                if printer.started:
                    sys.stdout.write("\n(the final reply, whole:)\n")
                ReplyPrinter(width).write(text)
            sys.stdout.write("\n")
        done.set()

    def on_event(ev: Event) -> None:
        if done.is_set():
            return
        if isinstance(ev, TurnStarted) and ev.turn.mid == mid:
            restart()
        elif isinstance(ev, ReplyDelta) and ev.mid == mid:
            printed.append(ev.text)
            if stream:
                printer.write(ev.text)
        elif isinstance(ev, TurnEnded) and ev.turn.mid == mid:
            if ev.turn.state == "interrupted":
                return  # a retry follows: keep waiting
            reply["state"] = ev.turn.state
            reply["error"] = ev.turn.error or None
            if ev.turn.state != "done":
                finish(ev.turn.text)
        elif isinstance(ev, MessagePosted) and ev.message.reply_to == mid:
            reply["id"] = ev.message.id
            reply["state"] = ev.message.state or "done"
            finish(ev.message.text)
        elif isinstance(ev, YouWereKicked):
            reply["state"] = "kicked"
            done.set()
        elif isinstance(ev, Synced):
            # The reply may have landed before the view started: it is in the first snapshot.
            existing = next((m for m in ev.state.messages if m.reply_to == mid), None)
            if existing is not None:
                reply.update(id=existing.id, state=existing.state or "done")
                finish(existing.text)

    view = SessionView(app.target, app.auth, app.sessions, sid, on_event)
    task = asyncio.create_task(view.run())
    try:
        async with asyncio.timeout(timeout):
            await done.wait()
    except TimeoutError:
        pass
    finally:
        view.stop()
        await task
    return reply


def history(
    ctx: typer.Context,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the last N messages."),
    as_json: bool = JsonOpt,
) -> None:
    """Print the session's history in server order."""
    app = ctx_of(ctx)
    msgs = app.sessions.history(app.current_session(), limit)
    width = terminal_width()
    emit(
        [m.to_json() for m in msgs],
        as_json,
        "\n".join(render_message(m, width) for m in msgs) or "(no messages yet)",
    )


def cancel(
    ctx: typer.Context,
    message: str = typer.Argument(..., help="Message id."),
    as_json: bool = JsonOpt,
) -> None:
    """Cancel your queued message (skipped) or running turn (stopped)."""
    app = ctx_of(ctx)
    outcome = app.sessions.cancel(app.current_session(), message)
    emit({"message": message, "outcome": outcome}, as_json, f"{message}: {outcome}")


def sessions(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List the sessions you're in: title, owner, your role, members, last activity, state."""
    app = ctx_of(ctx)
    mine = app.sessions.my_sessions()
    current = app.store.get_state("session")
    lines = []
    for s in mine:
        mark = "*" if s.session == current else " "
        if s.status in ("removed", "gone"):
            what = "removed by its owner" if s.status == "removed" else "no longer there"
            lines.append(f"{mark} {s.session}  {what}")
            continue
        title = one_line(s.title) or "(untitled)"
        lines.append(
            f"{mark} {s.session}  {title}  owner {one_line(s.owner)}  you: {s.role}  "
            f"{s.members} members  last active {_clock(s.last_activity)}  {s.status}"
        )
    emit(
        [s.to_json() for s in mine],
        as_json,
        "\n".join(lines) or "(no sessions yet: `emdash-fb chat` starts one)",
    )


def leave(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Leave the current session."""
    app = ctx_of(ctx)
    sid = app.current_session()
    app.sessions.leave(sid)
    app.remember_session(None)
    emit({"session": sid, "left": True}, as_json, f"left session {sid}")


config_app = typer.Typer(help="Show configuration.", no_args_is_help=True)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Show the Firebase target and where this profile's files live (also what is missing)."""
    from ..firebase.errors import ConfigError
    from ..firebase.target import CONFIG_FILE, ENV_VARS, config_dir

    app = ctx_of(ctx)
    config_file = config_dir(app.env) / CONFIG_FILE
    data: dict[str, Any] = {
        "profile": app.profile,
        "config_file": f"{config_file}{'' if config_file.exists() else ' (none)'}",
        "environment": {k: app.env[k] for k in ENV_VARS if app.env.get(k)},
    }
    try:
        t = app.target
    except ConfigError as exc:
        data.update(configured=False, problem=str(exc))
    else:
        data.update(
            configured=True,
            project_id=t.project_id,
            database_url=t.database_url,
            database_emulator=t.database_emulator,
            auth_emulator=t.auth_emulator,
            credentials_file=str(app.store.path),
        )
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        lines.append(f"{key}: {value if value is not None else '-'}")
    emit(data, as_json, "\n".join(lines))
