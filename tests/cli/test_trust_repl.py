"""Who may drive the agent, as people see it in real terminals (pty, read off the screen)."""

from __future__ import annotations

import re
import time

from emdash_fb.cli.context import AppContext
from tests.cli.test_repl import open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.support.terminal import Terminal

CODE = re.compile(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})")


def codes_on(screen: str) -> list[str]:
    return CODE.findall(screen)


def test_kick_shows_the_new_code_and_the_old_one_is_dead(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    old = codes_on(alice.wait_for("invite code:"))[0]
    bob = open_chat(term_env, terminals, "bob", "--join", old, "--name", "bob")
    bob.wait_for("joined session")
    alice.wait_for("bob joined")
    alice.line("/kick bob")
    screen = alice.wait_for("no longer works")
    new = codes_on(screen)[-1]
    assert new != old
    bob.wait_for("removed you")
    # bob's friend with a fresh account and the code bob knew
    friend = open_chat(term_env, terminals, "friend", "--join", old, "--name", "friend")
    assert "no longer valid" in friend.wait_for("no longer valid")
    assert friend.exited() != 0


def test_look_alike_name_and_the_waiting_limit_are_one_line_each(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = codes_on(alice.wait_for("invite code:"))[0]
    alice.line("/limit 2")
    alice.wait_for("2 messages waiting")
    fake = open_chat(term_env, terminals, "fake", "--join", code, "--name", "Al1ce")
    screen = fake.wait_for("is taken")
    assert "--name" in screen
    assert fake.exited() != 0
    # no agent runs: alice's messages wait; the third is refused with the reason
    alice.line("one")
    alice.line("two")
    alice.line("three")
    screen = alice.wait_for("you have 2 messages waiting")
    assert "/cancel" in screen
    alice.wait_for("> three")  # kept in the input, to send later
    alice.key("\x03")  # Ctrl-C clears it
    alice.line("/status")
    screen = alice.wait_for("waiting limit")
    assert "2 messages per member" in screen and "joiners are editors" in screen


def test_viewers_by_invite_and_they_stay_viewers(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = codes_on(alice.wait_for("invite code:"))[0]
    alice.line("/invite role viewer")
    alice.wait_for("are viewers")
    carol = open_chat(term_env, terminals, "carol", "--join", code, "--name", "carol")
    carol.wait_for("joined session")
    carol.line("can I drive?")
    carol.wait_for("viewers can't send")
    carol.wait_for("> can I drive?")  # the text stays in the input
    carol.key("\x03")
    carol.line("/leave")
    carol.wait_for("you left the session")
    carol.line(f"/join {code}")
    carol.wait_for("joined session (2 members)")
    carol.line("and now?")
    deadline = time.monotonic() + 20
    # refused again: the error in the scrollback and, while the text is kept, in the toolbar
    while carol.text().count("viewers can't send") < 3:
        assert time.monotonic() < deadline, carol.text()
        time.sleep(0.1)
    assert "> and now?" in carol.text()
    me = AppContext(profile="carol", env=term_env)
    assert me.sessions.state(me.current_session()).members[me.auth.current().uid].role == "viewer"
