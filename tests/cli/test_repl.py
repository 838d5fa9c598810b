"""End to end in real pseudo-terminals: emulator + runner + two REPLs, asserting on the screen."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from tests.support.cli import make_owner
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


@pytest.fixture
def term_env(rules_emu: ThreadedEmulator, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    return {
        **env,
        **rules_emu.env(),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "TERM": "xterm-256color",
    }


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for t in opened:
        t.close()


def open_chat(
    env: dict[str, str], opened: list[Terminal], profile: str, *args: str, cols: int = 120
) -> Terminal:
    if "--share" in args:  # an owner: signed in and allowed first, as a script does
        make_owner(env, profile, args[args.index("--name") + 1])
    t = Terminal([*EXE, "--profile", profile, "chat", *args], env, cols=cols)
    opened.append(t)
    return t


def test_two_people_and_the_agent(
    term_env: dict[str, str], terminals: list[Terminal], rules_emu: ThreadedEmulator
) -> None:
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "8"})):
        alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
        screen = alice.wait_for("invite code:")
        code = re.search(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})", screen).group(1)  # type: ignore[union-attr]
        alice.wait_for(f"invite {code} │ 1 online")  # the bottom toolbar
        assert "[code] [shared:1] >" in alice.text()
        alice.line("first question from alice about the build " + "and more " * 25)
        alice.wait_for("agent working")

        bob = open_chat(term_env, terminals, "bob", "--join", code, "--name", "bob")
        bob.wait_for("joined session")
        bob.wait_for("first question from alice")  # history on join
        alice.wait_for("bob joined")
        bob.line("bob here, me next")
        bob.wait_for("queued #2 behind alice")
        alice.wait_for("bob here, me next")
        # the streamed replies reach both screens
        for t in (alice, bob):
            t.wait_for("alice asked: first question from alice", timeout=40)
            t.wait_for("bob asked: bob here, me next", timeout=40)
        alice.line("/who")
        screen = alice.wait_for("editor, ")
        # each member with the short tag of their uid, so look-alike names can be told apart
        a_tag = re.search(r"alice (#\S{4})\s+owner", screen)
        b_tag = re.search(r"bob (#\S{4})\s+editor", screen)
        assert a_tag and b_tag and a_tag.group(1) != b_tag.group(1)
        alice.line(f"/role {b_tag.group(1)} viewer")  # a member named by tag
        bob.wait_for("you are now viewer")
        bob.line("/leave")
        bob.wait_for("you left the session")
        alice.wait_for("bob left")
        alice.line("/status")
        alice.wait_for("members (1/10)")
        alice.key("\x04")  # Ctrl-D leaves cleanly
        assert alice.exited() == 0


def test_wrong_code_is_a_clear_error(term_env: dict[str, str], terminals: list[Terminal]) -> None:
    t = open_chat(term_env, terminals, "carol", "--join", "ZZZZZ-ZZZZZ")
    t.wait_for("no session has invite code ZZZZZ-ZZZZZ")
    assert t.exited() == 1
    assert "Traceback" not in t.raw.decode("utf-8", "replace")


def test_markup_and_escapes_render_harmlessly(
    term_env: dict[str, str], terminals: list[Terminal]
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    screen = alice.wait_for("invite code:")
    code = re.search(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})", screen).group(1)  # type: ignore[union-attr]
    mallory = AppContext(profile="mallory", env=term_env)
    mallory.auth.sign_in_anonymous("[red]mallory[/red]")
    joined = mallory.sessions.join(code)
    evil = (
        "[bold blink]SHOUT[/] \x1b[2J\x1b[H\x1b]0;pwned\x07 \x1b[31mred\x1b[0m tab\there \x07bell"
    )
    mallory.sessions.send(joined.session, evil)
    screen = alice.wait_for("[bold blink]SHOUT[/]")
    assert "[red]mallory[/red]" in screen  # names too are shown literally
    assert "invite code:" in screen  # the screen was not cleared
    # the title-setting OSC is shown, inert; colour codes carry no text and are dropped
    assert "^[]0;pwned^G" in screen and "red^[" not in screen
    assert "^Gbell" in screen
    raw = alice.raw.decode("utf-8", "replace")
    assert "\x1b]0;pwned" not in raw and "\x1b[2J\x1b[H" not in raw.split("SHOUT")[1]


def test_typing_indicator_and_ctrl_c(
    term_env: dict[str, str], terminals: list[Terminal], rules_emu: ThreadedEmulator
) -> None:
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    screen = alice.wait_for("invite code:")
    code = re.search(r"invite code: ([0-9A-Z]{5}-[0-9A-Z]{5})", screen).group(1)  # type: ignore[union-attr]
    bob = open_chat(term_env, terminals, "bob", "--join", code, "--name", "bob")
    bob.wait_for("joined session")
    bob.type("I am thinking about")
    alice.wait_for("bob is typing")
    bob.key("\x03")  # Ctrl-C clears the line
    deadline = time.monotonic() + 10
    while "I am thinking about" in bob.text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "I am thinking about" not in bob.text()
    bob.line("/nonsense")
    bob.wait_for("unknown command /nonsense")
    bob.wait_for("> /nonsense")  # kept, to fix
    bob.key("\x03")
    bob.line("/join")
    bob.wait_for("usage: /join CODE")
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "4"})):
        bob.line("a long question " + "word " * 60)
        alice.wait_for("agent → bob ▸")  # the reply streaming in the toolbar
        bob.key("\x03")
        bob.wait_for("Ctrl-C again to cancel")
        bob.key("\x03")  # a second Ctrl-C on an empty line cancels the running turn
        bob.wait_for("cancelling your running message")
        alice.wait_for("agent → bob (cancelled)", timeout=10)  # the reply says so, once
        assert "the reply was cancelled" not in alice.text()
    bob.line("/quit")
    assert bob.exited() == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_emulator_goes_away_and_comes_back(tmp_path: Path, terminals: list[Terminal]) -> None:
    from emdash_fb.emulator.config import EmulatorConfig
    from tests.conftest import RULES

    saved = tmp_path / "saved"

    def emulator(import_dir: Path | None) -> ThreadedEmulator:
        cfg = EmulatorConfig(rules_path=RULES, import_dir=import_dir, export_on_exit=saved)
        cfg.ports = ports
        return ThreadedEmulator(cfg, keep_alive_seconds=1.0).start()

    ports = {"database": _free_port(), "auth": _free_port()}
    emu = emulator(None)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env.update(emu.env(), XDG_CONFIG_HOME=str(tmp_path / "cfg"), TERM="xterm-256color")
    alice = open_chat(env, terminals, "alice", "--share", "--name", "alice")
    alice.wait_for("1 online")
    emu.stop()  # the database goes away (its data is exported)
    alice.wait_for("reconnecting", timeout=15)
    alice.line("is anyone there?")
    alice.wait_for("can't reach the database", timeout=60)
    alice.line("/who")  # the REPL is still up and answers, with one clear line
    emu = emulator(saved)  # back on the same address, with the same data
    try:
        alice.wait_for("reconnected", timeout=40)
        alice.line("back again")
        alice.wait_for("queue 1", timeout=20)
        alice.line("/quit")
        assert alice.exited() == 0
    finally:
        emu.stop()
