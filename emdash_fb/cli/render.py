"""Turning session events into terminal output: safe, calm, one renderable each.

Every piece of text that came from the database is passed through
``session.text.clean`` and wrapped in ``rich.text.Text`` (never parsed as markup),
so nobody's message can style, move or clear anyone's terminal. Names get a
stable colour derived from the uid.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..session import codes
from ..session.records import Member, Message, SessionState
from ..session.text import clean

PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
)
PREVIEW_CHARS = 600


def colour_of(uid: str) -> str:
    digest = hashlib.sha1(uid.encode("utf-8")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def clock(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M") if ms else "--:--"


def name_text(name: str, uid: str) -> Text:
    return Text(clean(name) or uid[:8], style=f"bold {colour_of(uid)}")


def user_message(m: Message, *, full: bool = True) -> Text:
    text = clean(m.text)
    if not full and len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + f"… ({len(m.text)} chars; /history --full shows all)"
    line = Text.assemble(Text(f"{clock(m.at)} ", style="dim"), name_text(m.name, m.uid), ": ", text)
    if m.state == "cancelled":
        line.append(" (cancelled)", style="dim")
    return line


def agent_reply(m: Message, asked_by: str | None, *, full: bool = True) -> RenderableType:
    header = Text.assemble(
        Text(f"{clock(m.at)} ", style="dim"),
        Text("agent", style="bold bright_white"),
        Text(f" → {clean(asked_by)}" if asked_by else "", style="dim"),
    )
    if m.state:
        header.append(f" ({m.state})", style="yellow")
    body = clean(m.text)
    if not full and len(body) > PREVIEW_CHARS:
        body = body[:PREVIEW_CHARS] + f"\n\n… ({len(m.text)} chars; /history --full shows all)"
    return Group(header, Markdown(body))


def message(m: Message, asked_by: str | None = None, *, full: bool = True) -> RenderableType:
    return (
        agent_reply(m, asked_by, full=full) if m.role == "assistant" else user_message(m, full=full)
    )


def notice(text: str, style: str = "dim") -> Text:
    return Text(text, style=style)


def member_notice(member: Member, what: str, style: str = "dim") -> Text:
    return Text.assemble(
        Text("• ", style=style), name_text(member.name, member.uid), Text(f" {what}", style=style)
    )


def error(text: str) -> Text:
    return Text(f"✗ {clean(text)}", style="bold red")


def tool_line(name: str, detail: str, *, done: bool | None = None) -> Text:
    mark = "⚙" if done is None else ("✓" if done else "✗")
    return Text(f"  {mark} {clean(name)} {clean(detail)}".rstrip()[:200], style="dim")


def status_panel(
    state: SessionState,
    *,
    me: str,
    agent: str,
    connection: str,
    now_ms: int,
) -> Panel:
    meta = state.meta
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    role = state.members.get(me).role if me in state.members else "-"
    invite = codes.display(meta.invite_code) if meta.invite_code else "none (private)"
    table.add_row("session", Text(state.sid))
    if meta.title:
        table.add_row("title", Text(clean(meta.title)))
    table.add_row("your role", role)
    table.add_row("mode", meta.mode)
    table.add_row("invite", invite)
    table.add_row("status", "open" if meta.is_open(now_ms) else "closed")
    people = Text()
    for i, m in enumerate(sorted(state.members.values(), key=lambda m: m.joined_at)):
        if i:
            people.append(", ")
        people.append_text(name_text(m.name, m.uid))
        p = state.presence.get(m.uid)
        away = p is None or p.is_away(now_ms)
        people.append(f" ({m.role}{', away' if away and m.uid != me else ''})", style="dim")
    table.add_row(f"members ({len(state.members)}/{meta.max_members})", people)
    table.add_row("queue", str(len(state.queue)))
    table.add_row("agent", agent)
    table.add_row("connection", connection)
    return Panel(table, title="emdash-fb session", border_style="green", expand=False)
