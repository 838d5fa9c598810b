"""The scriptable commands as a user runs them: real processes, real emulator, real rules."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.allow import allow_owner
from tests.support.runner import BackgroundRunner

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


class Cli:
    def __init__(self, env: dict[str, str], profile: str) -> None:
        self.env = env
        self.profile = profile

    def run(
        self, *args: str, ok: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*EXE, "--profile", self.profile, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    def json(self, *args: str) -> Any:
        proc = self.run(*args, "--json")
        return json.loads(proc.stdout)  # exactly one JSON document

    def fails(self, *args: str) -> str:
        proc = self.run(*args, ok=False)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        return lines[0]


@pytest.fixture
def cli_env(rules_emu: ThreadedEmulator, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    return {**env, **rules_emu.env(), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}


def test_scripted_session(cli_env: dict[str, str]) -> None:
    alice, bob = Cli(cli_env, "alice"), Cli(cli_env, "bob")
    me = alice.json("login", "--name", "alice")
    assert me["name"] == "alice" and me["provider"] == "anonymous"
    assert "may not start sessions" in alice.fails("share", "--title", "demo")
    alice.json("admin", "allow", "me")
    shared = alice.json("share", "--title", "demo")
    assert set(shared) == {"session", "invite", "join_role", "web"}
    sent = alice.json("send", "first question")
    assert set(sent) == {"message", "position"} and sent["position"] == 1
    bob.json("login", "--name", "bob")
    joined = bob.json("join", shared["invite"])
    assert joined["session"] == shared["session"]
    assert {m["name"] for m in joined["members"]} == {"alice", "bob"}
    assert [m["text"] for m in joined["messages"]] == ["first question"]
    assert bob.json("send", "second")["position"] == 2
    history = alice.json("history")
    assert [(h["role"], h["author"], h["text"]) for h in history] == [
        ("user", "alice", "first question"),
        ("user", "bob", "second"),
    ]
    assert set(history[0]) >= {"id", "role", "author", "text", "at"}
    assert alice.json("history", "--limit", "1")[0]["text"] == "second"
    who = alice.json("who")
    assert sorted(w["name"] for w in who) == ["alice", "bob"]
    cancelled = bob.json("cancel", history[1]["id"])
    assert cancelled["outcome"] == "skipped"
    assert bob.json("leave")["left"] is True
    assert [w["name"] for w in alice.json("who")] == ["alice"]
    # bob has no current session now
    assert "no current session" in bob.fails("history")
    # --session overrides the remembered one, and bob is no longer a member
    assert "not a member" in bob.fails("--session", shared["session"], "history")


def test_whoami_token_config(cli_env: dict[str, str]) -> None:
    c = Cli(cli_env, "solo")
    who = c.json("whoami")
    assert who["profile"] == "solo" and who["uid"]
    tok = c.json("token")["token"]
    assert tok.count(".") == 2
    cfg = c.json("config", "show")
    assert cfg["database_emulator"] == cli_env["FIREBASE_DATABASE_EMULATOR_HOST"]
    assert cfg["profile"] == "solo"
    creds = Path(cfg["credentials_file"])
    assert creds.exists() and (creds.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["join", "ZZZZZ-ZZZZZ"], "no session has invite code"),
        (["join", "nope"], "is not an invite code"),
        (["send", "hello"], "no current session"),
        (["cancel", "-Nope"], "no current session"),
        (["--profile", "bad/name", "whoami"], "profile names"),
    ],
)
def test_user_mistakes_are_one_line(cli_env: dict[str, str], args: list[str], words: str) -> None:
    c = Cli(cli_env, "mistakes")
    assert words in c.fails(*args)


def test_send_wait_returns_the_reply(cli_env: dict[str, str], rules_emu: ThreadedEmulator) -> None:
    alice = Cli(cli_env, "alice")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    alice.json("share")
    with BackgroundRunner(rules_emu):
        out = alice.json("send", "hello agent", "--wait", "--timeout", "30")
    assert out["position"] == 1
    assert out["reply"]["state"] == "done"
    assert "alice asked: hello agent" in out["reply"]["text"]
    history = alice.json("history")
    assert history[-1]["role"] == "assistant" and history[-1]["reply_to"] == out["message"]


def test_wait_finds_a_reply_that_landed_before_it_started(
    cli_env: dict[str, str], rules_emu: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from emdash_fb.cli.commands import _wait_for_reply
    from emdash_fb.cli.context import AppContext

    app = AppContext(profile="early", env=cli_env)
    allow_owner(rules_emu.project_id, cli_env, app.auth.sign_in_anonymous("early").uid)
    sid = app.sessions.share().session
    with BackgroundRunner(rules_emu):
        mid = app.sessions.send(sid, "quick one").message
        deadline = time.monotonic() + 30
        while not any(m.reply_to == mid for m in app.sessions.state(sid).messages):
            assert time.monotonic() < deadline, "no reply"
            time.sleep(0.1)
    started = time.monotonic()
    reply = asyncio.run(_wait_for_reply(app, sid, mid, 20, stream=True))
    assert time.monotonic() - started < 10  # found on sync, not by running out of time
    assert reply["state"] == "done" and "early asked: quick one" in reply["text"]
    assert "early asked: quick one" in capsys.readouterr().out


def test_human_output_in_a_terminal_is_safe(cli_env: dict[str, str]) -> None:
    alice = Cli(cli_env, "alice")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    alice.json("share")
    alice.json("send", "[bold]not bold[/bold] \x1b[2J\x1b]0;pwned\x07 bell\x07")
    child = pexpect.spawn(
        EXE[0],
        [*EXE[1:], "--profile", "alice", "history"],
        env=cli_env,
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    out = child.before
    assert "[bold]not bold[/bold]" in out
    assert "\x1b[2J" not in out and "\x1b]0;" not in out and "\x07" not in out
    assert "bell^G" in out


FORGED = "hello\nalice: approve it\r[12:00] bob: me too\u2028 \u202eevil\u202c\x85" + "long " * 14


def test_history_and_join_text_keep_every_line_behind_the_gutter(
    cli_env: dict[str, str], rules_emu: ThreadedEmulator
) -> None:
    from emdash_fb.cli.context import AppContext
    from tests.support.rtdb import raw_send

    alice, bob = Cli(cli_env, "alice"), Cli(cli_env, "bob")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    shared = alice.json("share")
    mallory = AppContext(profile="mallory", env=cli_env)
    mallory.auth.sign_in_anonymous("mallory")
    mallory.sessions.join(shared["invite"])
    raw_send(rules_emu, mallory, shared["session"], "mallory", FORGED)

    expected_tail = [
        "  │ alice: approve it",
        "  │ [12:00] bob: me too",
        "  │  <U+202E>evil<U+202C>",
        "  │ " + ("long " * 14).rstrip(),
    ]
    lines = alice.run("history").stdout.splitlines()  # a pipe: lines as they are
    assert re.fullmatch(r"\[\d\d:\d\d\] mallory: hello", lines[0])
    assert lines[1:] == expected_tail
    bob.json("login", "--name", "bob")
    joined = bob.run("join", shared["invite"]).stdout.splitlines()
    assert joined[0].startswith("joined session") and joined[2:] == expected_tail

    # On a 40-column terminal long lines are folded behind the gutter too.
    child = pexpect.spawn(
        EXE[0], [*EXE[1:], "--profile", "alice", "history"], env=cli_env, dimensions=(40, 40)
    )
    child.expect(pexpect.EOF, timeout=30)
    screen = pyte.Screen(40, 40)
    pyte.ByteStream(screen).feed(child.before)
    rows = [r.rstrip() for r in screen.display if r.strip()]
    assert re.fullmatch(r"\[\d\d:\d\d\] mallory: hello", rows[0])
    assert len(rows) > 5 and all(r.startswith("  │") for r in rows[1:]), rows


def test_who_shows_uid_tags(cli_env: dict[str, str]) -> None:
    alice, bob = Cli(cli_env, "alice"), Cli(cli_env, "bob")
    a = alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    shared = alice.json("share")
    b = bob.json("login", "--name", "alice2")
    bob.json("join", shared["invite"])
    who = {w["uid"]: w for w in alice.json("who")}
    assert who[a["uid"]]["tag"] == "#" + a["uid"][-4:]
    assert who[b["uid"]]["tag"] == "#" + b["uid"][-4:]
    assert set(who[a["uid"]]) == {"uid", "name", "role", "away", "typing", "tag"}
    text = alice.run("who").stdout.splitlines()
    assert any(line.startswith(f"alice #{a['uid'][-4:]}  owner  ") for line in text)
    assert any(line.startswith(f"alice2 #{b['uid'][-4:]}  editor") for line in text)


def test_send_wait_streams_the_reply_behind_the_gutter(
    cli_env: dict[str, str], rules_emu: ThreadedEmulator
) -> None:
    alice = Cli(cli_env, "alice")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    alice.json("share")
    with BackgroundRunner(rules_emu):
        out = alice.run("send", "one\n[12:00] bob: two", "--wait", "--timeout", "30").stdout
    lines = out.splitlines()
    assert lines[0].startswith("queued as #1")
    assert lines[1] == "agent: alice asked: one"
    assert lines[2] == "  │ [12:00] bob: two"
    assert all(line.startswith("  │") for line in lines[2:])


def _until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return got


def test_approvals_from_a_script_and_files_sent_with_a_message(
    cli_env: dict[str, str], rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    from emdash_fb.runner.agents import load_agent

    alice, bob = Cli(cli_env, "alice"), Cli(cli_env, "bob")
    alice.json("login", "--name", "alice")
    alice.json("admin", "allow", "me")
    shared = alice.json("share")
    bob.json("login", "--name", "bob")
    bob.json("join", shared["invite"])
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert "the agent is not asking for anything" in alice.run("approvals").stdout
    assert "no such file" in bob.fails("send", "--attach", str(tmp_path / "nope.png"), "x")
    work = tmp_path / "work"
    work.mkdir()
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), workdir=work):
        sent = bob.json("send", "--attach", str(notes), "run: touch from-cli.txt")
        waiting = _until("the request never appeared", lambda: alice.json("approvals"))
        assert [(w["tool"], w["summary"], w["asked_by"]) for w in waiting] == [
            ("Bash", "touch from-cli.txt", "bob")
        ]
        assert "only the owner may answer" in bob.fails("approve")
        assert "not a request id" in alice.fails("deny", "nonsense")
        answered = alice.json("approve", waiting[0]["id"])
        assert answered == {"id": waiting[0]["id"], "allow": True}

        def replied() -> Any:
            history = alice.json("history")
            return any(h.get("reply_to") == sent["message"] for h in history) and history

        history = _until("no reply", replied)
    assert (work / "from-cli.txt").exists()
    question = next(h for h in history if h["id"] == sent["message"])
    assert question["attachments"] == [{"name": "notes.txt", "type": "text/plain", "size": 6}]
    assert "already answered: you allowed it" in alice.fails("deny", waiting[0]["id"])
