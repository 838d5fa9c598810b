"""Every state has a true toolbar and a way out; what a new user meets in the first ten minutes.

Real pseudo-terminals read off a pyte-rendered screen, a real emulator with the
real rules, real runners: a removed member's screen, a closed session, a long
streaming reply with wide characters at 80 and 120 columns, a pasted message
over the limit, coming back to a session after quitting.
"""

from __future__ import annotations

import re
import shlex
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session.text import cells
from tests.cli.test_repl import EXE, open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal

CODE = re.compile(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})")
GUTTER = "  │ "


def share(t: Terminal) -> str:
    return CODE.search(t.wait_for("invite code:")).group(1)  # type: ignore[union-attr]


def rows(t: Terminal) -> list[str]:
    return [r for r in t.text().split("\n") if r.strip()]


def wait_toolbar(t: Terminal, needle: str, timeout: float = 20.0) -> str:
    """The bottom toolbar's status row (the screen's last row) once it shows ``needle``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = rows(t)
        if shown and needle in shown[-1]:
            return shown[-1]
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the toolbar after {timeout}s:\n{t.text()}")


def wait_count(t: Terminal, needle: str, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while t.text().count(needle) < count:
        assert time.monotonic() < deadline, f"{needle!r} not {count}x on screen:\n{t.text()}"
        time.sleep(0.1)


def alice_and_bob(env: dict[str, str], opened: list[Terminal]) -> tuple[Terminal, Terminal, str]:
    """alice shares a session, bob joins it; both screens are live (the toolbar says 2)."""
    alice = open_chat(env, opened, "alice", "--share", "--name", "alice")
    code = share(alice)
    bob = open_chat(env, opened, "bob", "--join", code, "--name", "bob")
    wait_toolbar(bob, "2 online")
    return alice, bob, code


# --------------------------------------------------------------------------- removed, closed


def test_a_removed_member_is_told_so_and_can_leave_or_join_another(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    carol = open_chat(term_env, terminals, "carol", "--share", "--name", "carol")
    other = share(carol)
    bob = open_chat(term_env, terminals, "bob", "--join", code, "--name", "bob")
    wait_toolbar(bob, f"invite {code} │ 2 online")
    alice.line("/kick bob")
    code = CODE.findall(alice.wait_for("no longer works"))[-1]
    bob.wait_for("the owner removed you from this session")
    # nothing claims an invite or people online that no longer apply to bob
    bar = wait_toolbar(bob, "removed from the session")
    assert "invite" not in bar and "online" not in bar and "queue" not in bar, bar
    assert "/leave" in bar and "/join CODE" in bar
    assert "[removed] >" in rows(bob)[-2]
    bob.line("/status")  # no stale panel: one line saying what happened
    wait_count(bob, "✗ the owner removed you from this session (/leave", 2)
    assert "emdash-fb session" not in bob.text()
    # /leave: no write (there is no membership left to give up), just stop following
    bob.line("/leave")
    bob.wait_for("you left the session you were removed from")
    bob.wait_for("no session now: /join CODE")  # bob may not own sessions
    wait_toolbar(bob, "no session │ /join CODE or /quit")
    bob.line(f"/join {other}")
    bob.wait_for("joined session (2 members)")
    wait_toolbar(bob, f"invite {other} │ 2 online")
    # straight from the removed state to another session, without /leave
    dave = open_chat(term_env, terminals, "dave", "--join", code, "--name", "dave")
    wait_toolbar(dave, f"invite {code} │ 2 online")
    alice.line("/kick dave")
    wait_toolbar(dave, "removed from the session")
    dave.line(f"/join {other}")
    dave.wait_for("joined session (3 members)")
    wait_toolbar(dave, f"invite {other} │ 3 online")
    dave.line("/quit")
    screen = dave.wait_for("back with:")
    assert "emdash-fb --profile dave chat" in screen
    assert dave.exited() == 0


def test_a_closed_session_is_read_only_on_every_screen_and_anyone_can_leave_it(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice, bob, code = alice_and_bob(term_env, terminals)
    alice.line("/leave")  # an open session's owner closes it instead
    alice.wait_for("you own this session: /close it instead of leaving")
    bob.line("/close")
    bob.wait_for("only the session owner can close the session")
    alice.line("/close")  # asks first
    alice.wait_for(
        "close this session for everyone? it becomes read-only: /close again within 10 s"
    )
    time.sleep(1)
    wait_toolbar(alice, f"invite {code} │ 2 online")  # not closed yet
    alice.line("/close")
    for t in (alice, bob):
        t.wait_for("this session is closed: it is read-only now (/leave, /join CODE or /quit)")
        bar = wait_toolbar(t, "closed (read-only)")
        assert "invite" not in bar and "online" not in bar and "private" not in bar, bar
        assert "[closed] >" in t.text()
    alice.line("/close")
    alice.wait_for("this session is already closed (read-only)")
    # the owner leaves without a write (none is possible); bob too
    alice.line("/leave")
    alice.wait_for("you left the closed session")
    alice.wait_for("new private session: /share to invite others")
    wait_toolbar(alice, "private │ 1 online")
    bob.line("/leave")
    bob.wait_for("you left the closed session")
    bob.wait_for("no session now")
    wait_toolbar(bob, "no session")
    # `/close yes` needs no second step
    alice.line("/close yes")
    wait_toolbar(alice, "closed (read-only)")
    alice.line("/quit")
    screen = alice.wait_for("the session is closed; its history: emdash-fb --profile alice")
    assert "back with:" not in screen
    assert alice.exited() == 0


SLOW_SCRIPT = """
    import sys, time
    sys.stdin.read()
    sys.stdout.write("a partial answer, still streaming")
    sys.stdout.flush()
    time.sleep(30)
"""


def test_closing_mid_reply_keeps_what_streamed_and_clears_the_preview(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    path = tmp_path / "slow.py"
    path.write_text(textwrap.dedent(SLOW_SCRIPT))
    agent = load_agent("command", {"cmd": shlex.join([sys.executable, str(path)])}, env={})
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    share(alice)
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path, grace_s=1.0):
        alice.line("answer slowly")
        alice.wait_for("a partial answer, still streaming", timeout=30)
        alice.line("/close yes")
        wait_toolbar(alice, "closed (read-only)")
        # the runner can't finish a reply in a closed session: what streamed is kept, marked
        alice.wait_for("agent → alice (cut off)")
        shown = rows(alice)
        cut = next(i for i, r in enumerate(shown) if "agent → alice (cut off)" in r)
        assert shown[cut + 1] == f"{GUTTER}a partial answer, still streaming"
        assert not any("▸" in r for r in shown), alice.text()  # no preview left behind


def test_online_in_the_toolbar_is_here_in_who(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    # mallory only uses scriptable commands: a member with no presence record
    mallory = AppContext(profile="mallory", env=term_env)
    mallory.auth.sign_in_anonymous("mallory")
    joined = mallory.sessions.join(code)
    alice.wait_for("mallory joined")
    alice.wait_for("[shared:2] >")
    assert "1 online" in wait_toolbar(alice, "online")
    alice.line("/who")
    alice.wait_for("editor, away")
    assert re.search(r"alice #\S{4}\s+owner, here \(you\)", alice.text())
    mallory.sessions.heartbeat(joined.session)
    wait_toolbar(alice, "2 online")
    alice.line("/who")
    alice.wait_for("editor, here")


# --------------------------------------------------------------------------- the live preview

STREAM_SCRIPT = """
    import sys, time
    sys.stdin.read()
    words = " ".join(f"w{i:03d}" for i in range(160))
    sys.stdout.write(words + " 漢字かな混じり文 wide 表示 " * 3 + "THE-NEWEST-END")
    sys.stdout.flush()
    time.sleep(8)  # the test reads the toolbar meanwhile
    sys.stdout.write(" done")
"""
STREAMED = " ".join(f"w{i:03d}" for i in range(160)) + " 漢字かな混じり文 wide 表示 " * 3
STREAMED += "THE-NEWEST-END"


@pytest.mark.parametrize("cols", [80, 120])
def test_the_live_preview_shows_the_newest_text_wrapped_to_the_terminal(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
    cols: int,
) -> None:
    path = tmp_path / "stream.py"
    path.write_text(textwrap.dedent(STREAM_SCRIPT))
    agent = load_agent("command", {"cmd": shlex.join([sys.executable, str(path)])}, env={})
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice", cols=cols)
    share(alice)
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        alice.line("stream something long")
        alice.wait_for("THE-NEWEST-END", timeout=30)
        shown = rows(alice)
        head = max(i for i, r in enumerate(shown) if "agent → alice ▸" in r)
        preview, status = shown[head + 1 : -1], shown[-1]
        assert "online" in status  # the status row is still there, below the preview
        assert len(preview) == 4, shown
        assert all(r.startswith(GUTTER) for r in preview), preview
        assert all(cells(r) <= cols for r in preview)
        # the rows are the end of the reply, whole: nothing cut at the terminal's edge
        assert preview[-1].endswith("THE-NEWEST-END")
        joined = " ".join(r.removeprefix(GUTTER) for r in preview)
        assert STREAMED.endswith(joined), (joined, preview)
        # word-wrapped: each row but the last is full up to the word that did not fit
        for row, after in zip(preview, preview[1:], strict=False):
            nxt = after.removeprefix(GUTTER).split(" ")[0]
            assert cells(row) + 1 + cells(nxt) > cols, (row, nxt)
        alice.wait_for("THE-NEWEST-END done", timeout=30)  # and the reply lands in full


# --------------------------------------------------------------------------- input


def test_a_line_starting_with_a_slash_and_a_refused_message_kept_in_the_input(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    share(alice)
    alice.line("/help")
    alice.wait_for("//text sends a line starting with /")
    alice.line("/usr/bin/python crashes, why?")  # a command? no: kept, to fix
    alice.wait_for("unknown command /usr/bin/python: /help lists them; //… sends a line")
    alice.wait_for("> /usr/bin/python crashes, why?")
    alice.key("\x01/\r")  # Home, one more slash, Enter
    wait_toolbar(alice, "queue 1")
    me = AppContext(profile="alice", env=term_env)
    sid = me.current_session()
    assert me.sessions.history(sid)[-1].text == "/usr/bin/python crashes, why?"
    # a pasted message over the limit (16,000): refused, and back in the input to edit
    pasted = "x" * 16_000 + "\nTAILMARK"
    alice.key(f"\x1b[200~{pasted}\x1b[201~")
    alice.wait_for("TAILMARK")
    alice.key("\r")
    alice.wait_for("message too long: 16009 characters (the limit is 16000)")
    alice.wait_for("edit it, or Ctrl-C clears it")
    time.sleep(1)
    assert "TAILMARK" in rows(alice)[-4:], alice.text()  # still in the input
    alice.key("\x7f" * len("\nTAILMARK"))  # edit it down to the limit, and send
    time.sleep(1)
    alice.key("\r")
    wait_toolbar(alice, "queue 2")
    assert me.sessions.history(sid)[-1].text == "x" * 16_000
    assert not any("edit it, or" in r for r in rows(alice)[-3:])  # the error went with it


# --------------------------------------------------------------------------- coming back


def test_chat_comes_back_to_the_last_session_and_quitting_says_how(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    first = open_chat(term_env, terminals, "default", "--share", "--name", "alice")
    code = share(first)
    wait_toolbar(first, "1 online")
    first.line("a question worth coming back to")
    wait_toolbar(first, "queue 1")
    sid = AppContext(profile="default", env=term_env).current_session()
    first.key("\x04")  # Ctrl-D
    screen = first.wait_for("back with:")
    assert f"back with: emdash-fb chat   (or: emdash-fb --session {sid} chat)" in screen
    assert first.exited() == 0

    again = open_chat(term_env, terminals, "default")  # no flags: back where I was
    again.wait_for(f"back in session {sid} (1 member)")
    again.wait_for("a question worth coming back to")
    wait_toolbar(again, f"invite {code} │ 1 online │ queue 1")
    again.line("/quit")
    again.wait_for("back with:")
    assert again.exited() == 0

    # by its id: what the quit line offers besides `chat`
    by_id = Terminal([*EXE, "--session", sid, "chat"], term_env)
    terminals.append(by_id)
    by_id.wait_for(f"back in session {sid} (1 member)")
    by_id.line("/quit")
    by_id.wait_for("back with:")
    assert by_id.exited() == 0
    stranger = Terminal([*EXE, "--session", "-Nnot-a-session-xxx", "chat"], term_env)
    terminals.append(stranger)
    stranger.wait_for("not a member of session -Nnot-a-session-xxx")
    assert stranger.exited() == 1

    fresh = open_chat(term_env, terminals, "default", "--new")
    fresh.wait_for("new private session: /share to invite others")
    wait_toolbar(fresh, "private │ 1 online │ queue 0")
    assert "a question worth coming back to" not in fresh.text()
    fresh.line("/close yes")
    wait_toolbar(fresh, "closed (read-only)")
    fresh.line("/quit")
    fresh.wait_for("the session is closed")
    assert fresh.exited() == 0

    # the last session is closed now: chat says so and starts a new one
    after = open_chat(term_env, terminals, "default")
    after.wait_for("your last session is closed (read-only)")
    after.wait_for("new private session")
    wait_toolbar(after, "private │ 1 online")


def test_a_removed_member_is_not_taken_back_to_that_session(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice, bob, code = alice_and_bob(term_env, terminals)
    bob.line("/quit")
    assert "emdash-fb --profile bob chat" in bob.wait_for("back with:")
    assert bob.exited() == 0
    alice.line("/kick bob")
    alice.wait_for("no longer works")
    bob = open_chat(term_env, terminals, "bob")
    bob.wait_for("your last session: the owner removed you from this session")
    bob.wait_for("you may not start sessions")  # bob isn't an owner: no private one either
    wait_toolbar(bob, "no session")


# --------------------------------------------------------------------------- notices


def test_mode_changes_and_withdrawals_are_announced_once(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice, bob, code = alice_and_bob(term_env, terminals)
    bob.line("/mode plan")
    for t in (alice, bob):
        t.wait_for("• the mode is now plan")
        t.wait_for("[plan] [shared:2] >")
    alice.line("/mode plan")
    alice.wait_for("the mode is already plan")
    # no runner: alice's message waits; withdrawing it is told once, on each screen
    alice.line("one to withdraw")
    wait_toolbar(alice, "queue 1")
    alice.line("/cancel")
    alice.wait_for("• your message was withdrawn")
    bob.wait_for("• a message from alice was withdrawn")
    wait_toolbar(alice, "queue 0")
    time.sleep(1)
    assert alice.text().count("withdrawn") == 1 and "cancelled" not in alice.text()
    assert bob.text().count("withdrawn") == 1 and "the mode is now plan" in bob.text()
    assert alice.text().count("the mode is now plan") == 1


FAIL_SCRIPT = "import sys; sys.stdin.read(); sys.stderr.write('boom-4711'); sys.exit(3)"


def test_an_agent_failure_is_shown_once_and_the_agent_is_not_called_offline(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    agent = load_agent("command", {"cmd": shlex.join([sys.executable, "-c", FAIL_SCRIPT])}, env={})
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
        share(alice)
        alice.line("please fail")
        alice.wait_for("boom-4711", timeout=30)
        alice.wait_for("agent → alice (failed)")
        wait_toolbar(alice, "queue 0 │ agent idle")
        time.sleep(1.5)
        assert alice.text().count("boom-4711") == 1, alice.text()
        failed = next(i for i, r in enumerate(rows(alice)) if "agent → alice (failed)" in r)
        assert not any("offline" in r for r in rows(alice)[failed:]), alice.text()


# --------------------------------------------------------------------------- the preview's rows


@pytest.mark.parametrize("cols", [80, 120])
def test_preview_rows_are_the_end_of_the_text_and_fit_the_terminal(cols: int) -> None:
    from emdash_fb.cli.render import PREVIEW_ROWS, preview_rows

    text = "first line\n" + "漢字 mixed with ascii, " * 40 + "末尾の文字END"
    got = preview_rows(text, cols)
    assert len(got) == PREVIEW_ROWS
    assert all(r.startswith(GUTTER) and cells(r) <= cols for r in got), got
    assert got[-1].endswith("末尾の文字END")
    assert text.endswith(" ".join(r.removeprefix(GUTTER) for r in got))
    # hostile text stays inert and one row never holds a line break
    evil = preview_rows("ok\n\x1b[2Jclear\u202e\r\nTAB\there", cols)
    assert evil == [f"{GUTTER}ok", f"{GUTTER}clear<U+202E>", f"{GUTTER}TAB     here"]


def test_a_very_long_line_is_cut_at_steady_points_so_rows_do_not_jump() -> None:
    from emdash_fb.cli.render import STREAM_TAIL_CHARS, stream_tail

    text = "word " * 3000  # one line, far past the tail the preview lays out
    starts = {len(text[:n]) - len(stream_tail(text[:n])) for n in range(9000, 9400)}
    assert len(starts) <= 2  # the cut moved at most once over 400 new characters
    assert all(len(stream_tail(text[:n])) <= STREAM_TAIL_CHARS for n in range(4000, 15000, 7))
    multi = "a\n" * 3000
    assert stream_tail(multi).startswith("a\n")  # at the start of a line when one is in reach


def test_the_demo_does_not_promise_a_way_back(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    # its emulator (and every session in it) goes away when the demo does
    env = {k: v for k, v in term_env.items() if not k.startswith("FIREBASE_")}
    demo = Terminal([*EXE, "demo"], env)
    terminals.append(demo)
    share(demo)
    wait_toolbar(demo, "1 online")
    demo.line("/quit")
    assert demo.exited() == 0
    seen = demo.raw.decode("utf-8", "replace") + str(demo.child.before)
    assert "back with" not in seen and "--session" not in seen


def test_the_owners_screen_records_an_idle_close(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
) -> None:
    """A session closes by itself when idle (the rules' clock); the owner's client writes
    `status: closed` and retires the invite, as the data model says."""
    from tests.support.cli import make_owner

    make_owner(term_env, "idler", "ida")
    owner = AppContext(profile="idler", env=term_env)
    shared = owner.sessions.share(idle_timeout_s=3)
    owner.remember_session(shared.session)
    t = open_chat(term_env, terminals, "idler")
    t.wait_for(f"back in session {shared.session}")
    wait_toolbar(t, "closed (read-only)", timeout=20)
    deadline = time.monotonic() + 15
    while owner.sessions.meta(shared.session).status != "closed":
        assert time.monotonic() < deadline, "the owner's client never recorded the close"
        time.sleep(0.2)
    assert owner.sessions.meta(shared.session).invite_code is None


def test_leaving_from_another_terminal_is_told_as_such(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    bob = open_chat(term_env, terminals, "bob", "--join", code, "--name", "bob")
    bob.wait_for("joined session")
    import subprocess

    done = subprocess.run(
        [*EXE, "--profile", "bob", "leave"], env=term_env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    bob.wait_for("you are no longer a member of this session")
    assert "closed (read-only)" not in rows(bob)[-1]
    wait_toolbar(bob, "no longer a member")
