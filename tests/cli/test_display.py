"""Nobody forges a line, nothing hides: hostile text on a real terminal, read off the screen.

An attacker here is a member of the session with a valid token who writes raw
REST (message text may hold anything), or an agent whose reply says anything.
"""

from __future__ import annotations

import io
import re
import shlex
import sys
import textwrap
from pathlib import Path

import pyte
from rich.console import Console, RenderableType

from emdash_fb.cli import render
from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session.records import Member, Message
from tests.cli.test_repl import open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.support.rtdb import raw_send
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal

FAKE_TOOLBAR = " invite ABCDE-FGHJK │ 9 online │ queue 0 │ agent idle"
CODE = re.compile(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})")


def share(t: Terminal) -> str:
    screen = t.wait_for("invite code:")
    return CODE.search(screen).group(1)  # type: ignore[union-attr]


def rows(screen: str) -> list[str]:
    return screen.split("\n")


def row_index(screen: str, needle: str) -> int:
    return next(i for i, r in enumerate(rows(screen)) if needle in r)


HOSTILE = (
    "hello\n"
    "alice: approve it\r"
    f"{FAKE_TOOLBAR}\u2028"
    "[12:00] bob: me too\u2029"
    "clip \x1b]52;c;cm0gLXJmIH4=\x07 \u202eevil\u202c z\u200dj\u200bw \u3164 end\x85"
    "• carol joined\r\n"
    "\x1b[2J\x1b[Hstill here"
)


def test_a_raw_rest_member_cannot_forge_lines_or_hide_text(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    mallory = AppContext(profile="mallory", env=term_env)
    mallory.auth.sign_in_anonymous("mallory")
    joined = mallory.sessions.join(code)
    alice.wait_for("mallory joined")
    raw_send(rules_emu, mallory, joined.session, "mallory", HOSTILE)
    # a line long enough to wrap on a 120-column terminal
    raw_send(rules_emu, mallory, joined.session, "mallory", "filler " * 15 + "12:34 carol: wrapped")

    screen = alice.wait_for("carol: wrapped")
    screen = alice.wait_for("still here")
    lines = rows(screen)
    first = row_index(screen, "mallory: hello")
    assert re.match(r"\d\d:\d\d mallory: hello$", lines[first])
    assert lines[first + 1 : first + 7] == [
        "  │ alice: approve it",
        f"  │ {FAKE_TOOLBAR}",
        "  │ [12:00] bob: me too",
        "  │ clip ^[]52;c;cm0gLXJmIH4=^G <U+202E>evil<U+202C> z<U+200D>j<U+200B>w <U+3164> end",
        "  │ • carol joined",
        "  │ still here",  # the clear screen did nothing
    ]
    assert "invite code:" in screen
    # the long line wrapped behind the gutter, not to column 0
    long = row_index(screen, "mallory: filler")
    assert lines[long + 1].startswith("  │ ") and "carol: wrapped" in lines[long + 1]
    assert not any(r.startswith(("12:34", "carol")) for r in lines)
    # the fake toolbar is only ever behind the gutter; the real one is at the bottom
    fakes = [r for r in lines if "ABCDE-FGHJK" in r]
    assert fakes == [f"  │ {FAKE_TOOLBAR}"]
    # (after any redraw in progress; mallory writes raw REST, no presence: not online)
    alice.wait_for(f"invite {code} │ 1 online │ queue")
    raw = alice.raw.decode("utf-8", "replace")
    for applied in ("\x1b]52", "\u202e", "\u200d", "\u200b", "\u2028", "\u3164", "\x1b[2J\x1b[H"):
        assert applied not in raw.split("mallory")[-1]


REPLY_SCRIPT = """
    import sys, time
    sys.stdin.read()
    out = sys.stdout
    out.write("line one\\nline two\\n{fake}\\n")
    out.flush()
    time.sleep(4)  # the tests read the toolbar meanwhile
    out.write(
        "\\nread [notes](http://evil.example/x) or <http://plain.example>, "
        "![cat](http://img.example/cat.png)\\n\\n"
        "<b>raw</b> <!-- hidden note -->\\n\\n"
        "```\\ndef f():\\n\\n    return 1\\n```\\n"
        "12:00 alice: approve it\\n"
        "\\x1b]8;;http://evil.example\\x1b\\\\click\\x1b]8;;\\x1b\\\\\\n"
    )
"""


def test_agent_replies_keep_lines_and_show_link_targets(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    path = tmp_path / "reply.py"
    path.write_text(textwrap.dedent(REPLY_SCRIPT.format(fake=FAKE_TOOLBAR)))
    agent = load_agent("command", {"cmd": shlex.join([sys.executable, str(path)])}, env={})
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        alice.line("tell me")
        # while it streams, the reply's lines in the toolbar are behind the gutter too
        screen = alice.wait_for("agent → alice ▸", timeout=30)
        screen = alice.wait_for(FAKE_TOOLBAR)
        bar = row_index(screen, "agent → alice ▸")
        assert rows(screen)[bar + 1 : bar + 4] == [
            "  │ line one",
            "  │ line two",
            f"  │ {FAKE_TOOLBAR}",
        ]
        alice.wait_for(f"invite {code} │ 1 online")
        screen = alice.wait_for("12:00 alice: approve it", timeout=30)
    lines = rows(screen)
    head = row_index(screen, "agent → alice")
    assert re.match(r"\d\d:\d\d agent → alice$", lines[head])
    body = [r for r in lines[head + 1 :] if r.strip()]
    body = body[: next(i for i, r in enumerate(body) if "click" in r) + 1]
    assert all(r.startswith("  │") for r in body), body
    texts = [r.removeprefix("  │ ").strip() for r in body]
    # single line breaks kept
    assert texts[:3] == ["line one", "line two", FAKE_TOOLBAR.strip()]
    joined = " ".join(texts)
    assert "read notes (http://evil.example/x) or http://plain.example," in joined
    assert "[image: cat (http://img.example/cat.png)]" in joined
    assert "<b>raw</b> <!-- hidden note -->" in joined  # raw HTML is text
    code_rows = [t for t in texts if "def f():" in t or "return 1" in t]
    assert code_rows == ["def f():", "return 1"]  # the code block intact, lines apart
    assert "12:00 alice: approve it" in texts
    assert "^[]8;;http://evil.example^[\\click^[]8;;^[\\" in texts
    raw = alice.raw.decode("utf-8", "replace")
    assert "\x1b]8;" not in raw  # no terminal hyperlink anywhere


# --------------------------------------------------------------------------- the renderer


def screen_of(renderable: RenderableType, cols: int = 60) -> list[str]:
    """What ``renderable`` looks like on a real (emulated) terminal ``cols`` wide."""
    out = io.StringIO()
    Console(file=out, width=cols, force_terminal=True, color_system="standard").print(renderable)
    screen = pyte.Screen(cols, 30)
    pyte.Stream(screen).feed(out.getvalue().replace("\n", "\r\n"))
    return [r.rstrip() for r in screen.display if r.strip()]


def test_names_stay_on_one_line_and_show_hidden_characters() -> None:
    name = "bob\n12:00 alice: approve\r\u202eevil\u2028x\x1b[2J"
    shown = "bob^J12:00 alice: approve^M<U+202E>evil<U+2028>x"
    member = Member("uid0003f2a", name, "editor", 0)
    assert screen_of(render.member_notice(member, "joined"), cols=120) == [f"• {shown} joined"]
    msg = Message("m1", "user", "uid0003f2a", name, "hi", 1_700_000_000_000)
    (line,) = screen_of(render.message(msg), cols=120)
    assert line.endswith(f" {shown}: hi") and re.match(r"\d\d:\d\d bob\^J", line)
    reply = Message("m1~a", "assistant", "runner:x", "agent", "ok", 1_700_000_000_000)
    assert screen_of(render.message(reply, name), cols=120)[0].endswith(f"agent → {shown}")
    assert screen_of(render.tool_line("run\ntests", "ls\n12:00 bob: x")) == [
        "  ⚙ run^Jtests ls^J12:00 bob: x"
    ]


def test_a_long_name_or_error_wraps_behind_the_gutter() -> None:
    member = Member("u1", "n" * 40 + " 12:00 bob: approve it", "editor", 0)
    notice = screen_of(render.member_notice(member, "joined"), cols=40)
    assert len(notice) > 1 and all(r.startswith("  │ ") for r in notice[1:])
    error = screen_of(render.error("agent command exited 1: boom\n12:00 bob: approve it"))
    assert error == ["✗ agent command exited 1: boom", "  │ 12:00 bob: approve it"]


def test_reply_markdown_renders_links_images_and_html_as_text() -> None:
    md = (
        "[notes](http://evil) [](http://empty) [http://same](http://same) <a@b.example>\n"
        "![](http://img/x.png) [![alt](http://i)](http://l)\n"
        "<div>block</div>"
    )
    reply = Message("m~a", "assistant", "r", "agent", md, 1_700_000_000_000)
    body = [r.removeprefix("  │ ") for r in screen_of(render.message(reply), cols=100)[1:]]
    assert body == [
        "notes (http://evil) http://empty http://same a@b.example",
        "[image (http://img/x.png)] [image: alt (http://i)] (http://l)",
        "<div>block</div>",
    ]


def test_reply_markdown_character_references_cannot_smuggle_hidden_characters() -> None:
    md = "a &#x202e;b &zwj; &#13;c &#x2028;d [l&#x200b;](http://x) `&#x202e;` &shy;"
    reply = Message("m~a", "assistant", "r", "agent", md, 1_700_000_000_000)
    body = [r.removeprefix("  │ ") for r in screen_of(render.message(reply), cols=100)[1:]]
    # (a referenced CR or U+2028 is a line break like any other: behind the gutter)
    assert body == [
        "a <U+202E>b <U+200D>",
        "c",
        "d l<U+200B> (http://x) &#x202e; <U+00AD>",
    ]
