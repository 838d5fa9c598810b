"""A newcomer's first ten minutes, as real processes: identity that is never lost, sessions
you can find again, failing fast with the fix named, one-line and JSON errors, and a demo
join line that works pasted into another shell."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.cli.test_commands import Cli, cli_env  # noqa: F401 (fixture)
from tests.support.terminal import Terminal

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


def test_login_twice_keeps_the_uid_and_the_owners_session(cli_env: dict[str, str]) -> None:  # noqa: F811
    """The reported loss: `login --name erin; share; login --name "Erin B"; who`."""
    erin, fred = Cli(cli_env, "erin"), Cli(cli_env, "fred")
    first = erin.json("login", "--name", "erin")
    erin.json("admin", "allow", "me")
    shared = erin.json("share", "--title", "pairing")
    fred.json("login", "--name", "fred")
    fred.json("join", shared["invite"])
    again = erin.json("login", "--name", "Erin B")
    assert again["uid"] == first["uid"] and again["name"] == "Erin B"
    who = {w["uid"]: w["name"] for w in erin.json("who")}
    assert who[first["uid"]] == "Erin B"  # renamed in the session too
    assert erin.json("whoami")["uid"] == first["uid"]
    # a name taken in one of your sessions is kept there, and said
    proc = erin.run("login", "--name", "fred")
    assert "kept your old name" in proc.stderr
    assert {w["uid"]: w["name"] for w in erin.json("who")}[first["uid"]] == "Erin B"
    # `login` alone says who you are; it never makes a new identity
    assert "already signed in as" in erin.run("login").stdout
    assert erin.json("whoami")["uid"] == first["uid"]


def test_anonymous_accounts_upgrade_in_place_and_are_never_dropped_silently(
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    ada = Cli(cli_env, "ada")
    anon = ada.json("login", "--name", "ada")
    refused = ada.fails("login", "--email", "ada@example.com", "--password", "pw-123456")
    assert "--link-email" in refused and "--switch" in refused
    linked = ada.json("login", "--link-email", "ada@example.com", "--password", "pw-123456")
    assert linked["uid"] == anon["uid"] and linked["provider"] == "password"
    elsewhere = Cli(cli_env, "ada-laptop")
    same = elsewhere.json("login", "--email", "ada@example.com", "--password", "pw-123456")
    assert same["uid"] == anon["uid"]  # the same person on another machine
    # logout: an email account may go; an anonymous one only with --force
    assert elsewhere.json("logout")["signed_out"] is True
    bob = Cli(cli_env, "bob")
    bob.json("login", "--name", "bob")
    assert "--force" in bob.fails("logout")
    assert bob.json("logout", "--force")["signed_out"] is True


def test_sessions_lists_where_you_are_and_how_you_stand(cli_env: dict[str, str]) -> None:  # noqa: F811
    alice, bob = Cli(cli_env, "alice"), Cli(cli_env, "bob")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    bob.json("login", "--name", "bob")
    bob.json("admin", "allow", "me")
    one = alice.json("share", "--title", "kept")
    two = alice.json("share", "--title", "kicks bob")
    mine = bob.json("share", "--title", "bob's own")
    bob.json("join", one["invite"])
    bob.json("join", two["invite"])
    bob_uid = bob.json("whoami")["uid"]
    from emdash_fb.cli.context import AppContext

    AppContext(profile="alice", env=cli_env).sessions.kick(two["session"], bob_uid)
    listed = {s["session"]: s for s in bob.json("sessions")}
    assert listed[one["session"]]["title"] == "kept"
    assert listed[one["session"]]["owner"] == "alice" and listed[one["session"]]["role"] == "editor"
    assert listed[one["session"]]["members"] == 2 and listed[one["session"]]["status"] == "open"
    assert listed[mine["session"]]["role"] == "owner"
    assert listed[two["session"]]["status"] == "removed"
    human = bob.run("sessions").stdout
    assert "kept" in human and "removed by its owner" in human
    bob.json("--session", one["session"], "leave")
    assert one["session"] not in {s["session"] for s in bob.json("sessions")}


def test_chat_with_nothing_to_reach_fails_fast_in_one_line(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    nothing = {**base, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = subprocess.run([*EXE, "chat"], env=nothing, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
    assert "make demo" in done.stderr
    shown = subprocess.run(
        [*EXE, "config", "show", "--json"], env=nothing, capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0
    config = json.loads(shown.stdout)
    assert config["configured"] is False and "make demo" in config["problem"]
    down = {
        **nothing,
        "FIREBASE_DATABASE_EMULATOR_HOST": "127.0.0.1:9",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",
    }
    started = time.monotonic()
    done = subprocess.run([*EXE, "chat"], env=down, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
    assert "emulators start" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["join"], "usage"),
        (["join", "ZZZZZ-ZZZZZ"], "bad_invite"),
        (["history"], "no_session"),
        (["send", "--timeout", "soon", "hi"], "usage"),
    ],
)
def test_errors_are_one_line_and_json_objects_in_json_mode(
    cli_env: dict[str, str],  # noqa: F811
    args: list[str],
    code: str,
) -> None:
    c = Cli(cli_env, "mistakes")
    c.json("login", "--name", "m")
    line = c.fails(*args)
    assert line.startswith("error: ")
    proc = c.run(*args, "--json", ok=False)
    assert proc.returncode != 0 and proc.stdout == ""
    err = json.loads(proc.stderr)
    assert err["error"] == code and err["message"]


def test_help_shows_plain_placeholders() -> None:
    done = subprocess.run([*EXE, "send", "--help"], capture_output=True, text=True, timeout=30)
    assert "Usage: emdash-fb send [OPTIONS] TEXT" in done.stdout
    assert "<bool>" not in done.stdout and "{" not in done.stdout and "<str>" not in done.stdout


def test_the_demos_join_line_works_pasted_into_another_shell(tmp_path: Path) -> None:
    """`emdash-fb demo` at 80 columns prints the join line; it is one line, with an absolute
    path, and a second shell in another folder runs it as pasted and joins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "TERM": "xterm-256color"}
    demo = Terminal([*EXE, "demo"], env, cols=80, rows=30)
    guest = None
    try:
        demo.wait_for("from any folder, run:", timeout=40)
        raw = demo.raw.decode("utf-8", "replace")
        line = next(ln for ln in re.split(r"\r?\n", raw) if "--join" in ln and "chat" in ln).strip()
        line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)  # the terminal's own colour codes
        assert len(line) > 80  # longer than the screen, and still one line
        words = shlex.split(line)
        exe = next(w for w in words if "emdash" in w or w.endswith("python") or "python" in w)
        assert os.path.isabs(exe), line
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        guest = Terminal(
            ["/bin/sh", "-c", f"cd {shlex.quote(str(elsewhere))} && {line}"],
            {**env, "XDG_CONFIG_HOME": str(tmp_path / "guest-cfg")},
            cols=80,
            rows=30,
        )
        guest.wait_for("joined session", timeout=40)
        demo.wait_for("guest joined", timeout=20)
        guest.line("hello from the pasted line")
        demo.wait_for("hello from the pasted line", timeout=20)
        # the browser link it printed is served by the demo itself, config and all
        raw = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", demo.raw.decode("utf-8", "replace"))
        link = re.search(r"Or in a browser \(viewers\): (http://\S+)/#code=([0-9A-Z]{10})", raw)
        assert link is not None, raw
        page = requests.get(link.group(1) + "/", timeout=5)
        assert page.status_code == 200 and "Join a session" in page.text
        config = requests.get(link.group(1) + "/__/firebase/init.json", timeout=5).json()
        assert config["databaseEmulatorHost"] and config["authEmulatorHost"]
    finally:
        for t in (guest, demo):
            if t is not None:
                t.close()
