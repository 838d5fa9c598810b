"""Turning session events into terminal output: safe, calm, one renderable each.

Every piece of text that came from the database goes through
:mod:`emdash_fb.session.text` (``clean`` for texts, ``one_line`` for names and
labels) and is wrapped in ``rich.text.Text`` (never parsed as rich markup), so
nobody's message can style, move or clear anyone's terminal, and nothing in it
is invisible. Names get a stable colour derived from the uid.

Layout: a message's first row is ``HH:MM name: first line``; every further
row -- each line break and each wrapped row -- is drawn behind the gutter
``  │ `` (:class:`Guttered`), so no line of anyone's text can pass for a new
speaker, a notice or the toolbar. An agent reply is a header row
``HH:MM agent → asker`` and its markdown, every row of it behind the gutter.
The markdown shows links as ``text (url)`` and images as ``[image: alt (url)]``
(never a terminal hyperlink, never fetched), raw HTML as text, and keeps single
line breaks (:class:`ReplyMarkdown`).

The live preview of a streaming reply (:func:`preview_rows`) is the same shape
in plain rows for the bottom toolbar: the reply's newest text, word-wrapped to
the terminal's width (wide characters count two columns), every row behind the
gutter, the last few rows of it -- so the newest characters are always on screen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markdown import Markdown
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..session import attachments, codes
from ..session.approvals import UNANSWERED, Approval, Policy
from ..session.records import Member, Message, SessionState
from ..session.text import GUTTER, clean, layout, lines, one_line, uid_tag, verbatim

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
#: How many rows of a streaming reply the toolbar shows.
PREVIEW_ROWS = 4
#: How much of the end of a streaming reply the preview lays out (it shows only the last rows).
STREAM_TAIL_CHARS = 4000


def colour_of(uid: str) -> str:
    digest = hashlib.sha1(uid.encode("utf-8")).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def clock(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M") if ms else "--:--"


class Guttered:
    """``renderable`` with every row after its first drawn behind the gutter (``  │ ``).

    The renderable is laid out 4 columns narrower than the terminal, so the
    rows rich wraps are behind the gutter as well: nothing inside can reach
    column 0 except the first row, which the caller starts with a time and a name.
    """

    def __init__(self, renderable: RenderableType, gutter: str = GUTTER) -> None:
        self.renderable = renderable
        self.gutter = gutter

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        inner = options.update(width=max(1, options.max_width - cell_len(self.gutter)))
        rows = console.render_lines(self.renderable, inner, pad=False)
        while rows and not any(seg.text for seg in rows[-1]):
            rows.pop()
        gutter = Segment(self.gutter, console.get_style("dim"))
        for i, row in enumerate(rows):
            if i:
                yield gutter
            yield from row
            yield Segment.line()


# Markdown for agent replies: commonmark without raw HTML (so it is shown as text),
# tables and strikethrough as rich enables them.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")


class ReplyMarkdown(Markdown):
    """rich's Markdown, made honest for text nobody vetted.

    * links become their text followed by `` (url)`` (just the url when it is
      the text, as in ``<http://x>``): no OSC 8 hyperlink hides a target;
    * images become the text ``[image: alt (url)]``: nothing is fetched;
    * raw HTML is not parsed, so it shows as the text it is;
    * a single line break stays a line break (plain-text replies keep their
      lines); code blocks are untouched.
    """

    def __init__(self, markup: str) -> None:
        super().__init__("", hyperlinks=False)
        self.markup = markup
        self.parsed = list(defang(_PARSER.parse(markup)))


_CONTENT = ("text", "code_inline", "fence", "code_block")


def defang(tokens: Iterable[Token]) -> Iterable[Token]:
    """Markdown-it tokens with links, images and soft breaks turned into plain text.

    Texts are cleaned again after parsing: markdown decodes character references,
    so ``&#x202e;`` or ``&zwj;`` would otherwise bring back what ``clean`` showed.
    """
    for token in tokens:
        if token.children is not None:
            token.children = _inline(token.children)
        if token.type in _CONTENT:
            token.content = clean(token.content)
        yield token


def _inline(children: list[Token]) -> list[Token]:
    out: list[Token] = []
    links: list[tuple[str, int]] = []  # (href, where its text starts in out)
    for tok in children:
        if tok.type == "softbreak":
            out.append(Token("hardbreak", "br", 0))
        elif tok.type == "link_open":
            links.append((str(tok.attrs.get("href", "")), len(out)))
        elif tok.type == "link_close" and links:
            href, begin = links.pop()
            href = one_line(href)
            shown = "".join(t.content for t in out[begin:] if t.type in ("text", "code_inline"))
            if href and href not in (shown, f"mailto:{shown}"):
                out.append(_text(f" ({href})" if shown else href))
        elif tok.type == "image":
            src = one_line(str(tok.attrs.get("src", "")))
            alt = one_line(tok.content).strip()
            out.append(_text(f"[image: {alt} ({src})]" if alt else f"[image ({src})]"))
        else:
            if tok.type in _CONTENT:
                tok.content = clean(tok.content)
            out.append(tok)
    return out


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


def name_text(name: str, uid: str) -> Text:
    return Text(one_line(name) or uid[:8], style=f"bold {colour_of(uid)}")


def tagged_name(name: str, uid: str) -> Text:
    """A name with its uid tag (``alice #3f2a``), for lists where people must be told apart."""
    return Text.assemble(name_text(name, uid), Text(f" {uid_tag(uid)}", style="dim"))


def user_message(m: Message, *, full: bool = True) -> RenderableType:
    text = clean(m.text)
    if not full and len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + f"… ({len(m.text)} chars; /history --full shows all)"
    line = Text.assemble(Text(f"{clock(m.at)} ", style="dim"), name_text(m.name, m.uid), ": ", text)
    if m.state == "cancelled":
        line.append(" (cancelled)", style="dim")
    for a in m.attachments:
        line.append("\n")
        line.append(attachment_label(a.name, a.media_type, a.size), style="cyan")
    return Guttered(line)


def attachment_label(name: str, media_type: str, size: int) -> str:
    """``[image shot.png 180 KB]``, with the name cleaned to one line."""
    return attachments.label(one_line(name).strip() or "file", media_type, size)


def agent_reply(m: Message, asked_by: str | None, *, full: bool = True) -> RenderableType:
    header = Text.assemble(
        Text(f"{clock(m.at)} ", style="dim"),
        Text("agent", style="bold bright_white"),
        Text(f" → {one_line(asked_by)}" if asked_by else "", style="dim"),
    )
    if m.state:
        header.append(f" ({m.state})", style="yellow")
    body = clean(m.text)
    if not full and len(body) > PREVIEW_CHARS:
        body = body[:PREVIEW_CHARS] + f"\n\n… ({len(m.text)} chars; /history --full shows all)"
    return Guttered(Group(header, ReplyMarkdown(body)))


def message(m: Message, asked_by: str | None = None, *, full: bool = True) -> RenderableType:
    return (
        agent_reply(m, asked_by, full=full) if m.role == "assistant" else user_message(m, full=full)
    )


def notice(text: str, style: str = "dim") -> RenderableType:
    """One of our own lines; any name in ``text`` must already be ``one_line``-d."""
    return Guttered(Text(text, style=style))


def member_notice(member: Member, what: str, style: str = "dim") -> RenderableType:
    return Guttered(
        Text.assemble(
            Text("• ", style=style),
            name_text(member.name, member.uid),
            Text(f" {what}", style=style),
        )
    )


def error(text: str) -> RenderableType:
    return Guttered(Text(f"✗ {clean(text)}", style="bold red"))


def tool_line(name: str, detail: str, *, done: bool | None = None) -> RenderableType:
    mark = "⚙" if done is None else ("✓" if done else "✗")
    line = f"  {mark} {one_line(name)} {one_line(detail)}".rstrip()
    return Guttered(Text(line if len(line) <= 200 else line[:199] + "…", style="dim"))


def approval_request(
    a: Approval, *, asked_by: str, mine: bool, who: str, now_ms: int
) -> RenderableType:
    """The agent's request, as everyone sees it, and who may answer."""
    head = Text.assemble(
        Text("⚠ the agent asks to use ", style="bold yellow"),
        Text(one_line(a.tool), style="bold"),
        Text(" for ", style="yellow"),
        Text(one_line(asked_by) or "someone", style="bold"),
        Text(": ", style="yellow"),
        Text(verbatim(a.summary, line=True)),
    )
    parts: list[RenderableType] = [head]
    if a.detail.strip():
        rows = verbatim(a.detail).split("\n")
        more = f"\n… ({len(rows) - 20} more lines)" if len(rows) > 20 else ""
        parts.append(Text(layout("  │ ", "\n".join(rows[:20]) + more), style="dim"))
    left = max(0, (a.expires_at - now_ms) // 1000)
    when = f"times out in {left // 60}:{left % 60:02d}"
    if mine:
        parts.append(
            Text(
                f"  /approve or /deny [reason] (y or n on an empty prompt) · {when}", style="yellow"
            )
        )
    else:
        parts.append(Text(f"  waiting for {who} to answer · {when}", style="dim"))
    return Guttered(Group(*parts))


def approval_decided(a: Approval, *, allow: bool, by: str) -> RenderableType:
    what = f"{one_line(a.tool)}: {verbatim(a.summary, line=True)}"
    if by in UNANSWERED:
        why = {
            "timeout": "nobody answered in time",
            "cancel": "the turn was cancelled",
            "stopped": "the runner stopped",
        }[by]
        return notice(f"✗ {what} — denied: {why}", "yellow")
    reason = a.answer.reason if a.answer is not None else ""
    verb = "allowed" if allow else "denied"
    line = Text.assemble(
        Text("✓ " if allow else "✗ ", style="green" if allow else "red"),
        Text(one_line(by), style="bold"),
        Text(f" {verb} {what}"),
        Text(f" ({one_line(reason)})" if reason else "", style="dim"),
    )
    return Guttered(line)


def policy_text(policy: Policy) -> str:
    tools = ", ".join(sorted(policy.allowed)) or "none"
    default = " (the read-only tools)" if policy.allow is None else ""
    return (
        f"answered by {policy.who()}; pre-approved for everyone: {tools}{default}; "
        f"requests time out after {policy.timeout_s} s"
    )


def status_panel(
    state: SessionState,
    *,
    me: str,
    agent: str,
    connection: str,
    now_ms: int,
    join_role: str | None = None,
) -> Panel:
    meta = state.meta
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    role = state.members.get(me).role if me in state.members else "-"
    invite = codes.display(meta.invite_code) if meta.invite_code else "none (private)"
    table.add_row("session", Text(state.sid))
    if meta.title:
        table.add_row("title", Text(one_line(meta.title)))
    table.add_row("your role", role)
    table.add_row("mode", meta.mode)
    table.add_row("invite", invite + (f" (joiners are {join_role}s)" if join_role else ""))
    table.add_row("waiting limit", f"{meta.max_queued} messages per member")
    table.add_row("status", "open" if meta.is_open(now_ms) else "closed")
    people = Text()
    for i, m in enumerate(sorted(state.members.values(), key=lambda m: m.joined_at)):
        if i:
            people.append(", ")
        people.append_text(tagged_name(m.name, m.uid))
        p = state.presence.get(m.uid)
        away = p is None or p.is_away(now_ms)
        people.append(f" ({m.role}{', away' if away and m.uid != me else ''})", style="dim")
    table.add_row(f"members ({len(state.members)}/{meta.max_members})", people)
    table.add_row("queue", str(len(state.queue)))
    described = state.agent.describe()
    table.add_row("agent", Text(f"{agent} · {one_line(described)}" if described else agent))
    if state.agent.session_id:
        table.add_row("agent session", Text(one_line(state.agent.session_id)))
    table.add_row("approvals", Text(policy_text(meta.policy)))
    waiting = [a for a in state.approvals.values() if a.pending(now_ms, _running(state, a.mid))]
    for a in waiting:
        table.add_row("waiting", Text(f"{one_line(a.tool)}: {one_line(a.summary)}"))
    table.add_row("connection", connection)
    return Panel(table, title="emdash-fb session", border_style="green", expand=False)


def _running(state: SessionState, mid: str) -> bool:
    turn = state.turns.get(mid)
    return turn is not None and turn.state == "running"


# --------------------------------------------------------------------------- live preview


def stream_tail(text: str, limit: int = STREAM_TAIL_CHARS) -> str:
    """The end of a streaming reply worth laying out: at most ``limit`` characters.

    It starts at the beginning of a line when one is in reach, else (one very long
    line) at a multiple of a quarter of ``limit``, so the cut moves only now and then
    and the preview's rows do not re-flow with every delta.
    """
    if len(text) <= limit:
        return text
    start = len(text) - limit
    brk = text.find("\n", start)
    if brk != -1:
        return text[brk + 1 :]
    step = max(1, limit // 4)
    return text[-(-start // step) * step :]


def preview_rows(text: str, width: int, rows: int = PREVIEW_ROWS) -> list[str]:
    """The last ``rows`` rows of ``text`` (a reply so far), as a ``width``-column terminal
    shows them: cleaned, every row behind the gutter, word-wrapped so no row is wider
    than ``width`` (wide characters count two). The newest text is in the last row."""
    width = max(width, len(GUTTER) + 4)
    out: list[str] = []
    for line in reversed(lines(stream_tail(text).rstrip())):
        out[:0] = layout(GUTTER, line, width=width).split("\n")
        if len(out) >= rows:
            break
    return out[-rows:]
