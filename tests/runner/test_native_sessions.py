"""Native agent sessions through the real runner: Claude Code's stream-json protocol (spoken by
tests/support/fake_claude.py, a real subprocess), shared approvals, kill -9 and resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from tests.runner.test_runner import owner_get, replies, wait_for

MakeUser = Callable[..., AppContext]
FAKE = Path(__file__).resolve().parents[1] / "support" / "fake_claude.py"


def claude_runner(
    emu: ThreadedEmulator, state: Path, workdir: Path, *args: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    return subprocess.Popen(
        [
            sys.executable, "-m", "emdash_fb.cli.main", "runner",
            "--agent", "claude", "--agent-opt", f"bin={sys.executable} {FAKE}",
            "--workdir", str(workdir), "--lease", "3", *args,
        ],
        env={**env, **emu.env(), "FAKE_CLAUDE_STATE": str(state)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip


def kill9(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


def log(state: Path) -> list[dict[str, Any]]:
    path = state / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_claude_asks_the_session_and_resumes_after_kill_9(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    state, work = tmp_path / "state", tmp_path / "repo"
    state.mkdir()
    work.mkdir()
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    runner = claude_runner(rules_emu, state, work)
    try:
        first = bob.sessions.send(sid, "hello\nrun: touch made.txt").message
        requests = wait_for(
            lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{first}/approvals"), timeout=30
        )
        aid, request = next(iter(requests.items()))
        assert request["tool"] == "Bash" and request["summary"] == "touch made.txt"
        assert not (work / "made.txt").exists()
        alice.sessions.approvals.answer(sid, first, aid, True)
        s = wait_for(lambda: (s := alice.sessions.state(sid)) and first in replies(s) and s)
        assert (work / "made.txt").exists()
        agent = s.agent
        assert agent.name == "claude" and agent.session_id and agent.folder == "repo"
        assert f"turn 1 of {agent.session_id}" in replies(s)[first].text
        # a guest's turn ran in Claude Code's default permission mode, whatever the owner's
        starts = [e for e in log(state) if e.get("kind") == "start"]
        assert len(starts) == 1
    finally:
        kill9(runner)  # the runner and its Claude Code process die at once
    runner = claude_runner(rules_emu, state, work)
    try:
        second = alice.sessions.send(sid, "and now?").message
        s = wait_for(lambda: (s := alice.sessions.state(sid)) and second in replies(s) and s)
    finally:
        out = stop(runner)
    assert f"turn 2 of {agent.session_id}" in replies(s)[second].text, out
    starts = [e for e in log(state) if e.get("kind") == "start"]
    assert len(starts) == 2
    assert any(
        a in (f"--resume={agent.session_id}", agent.session_id) for a in starts[1]["argv"]
    ), starts[1]
    assert s.agent.session_id == agent.session_id


def test_cancel_interrupts_claude_and_keeps_its_session(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    state, work = tmp_path / "state", tmp_path / "repo"
    state.mkdir()
    work.mkdir()
    alice = make_user("alice")
    sid = alice.sessions.share().session
    runner = claude_runner(rules_emu, state, work)
    try:
        slow = alice.sessions.send(sid, "slow").message
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{slow}/chunks"), timeout=30)
        assert alice.sessions.cancel(sid, slow) == "stopping"
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{slow}/state") == "cancelled")
        after = alice.sessions.send(sid, "still there?").message
        s = wait_for(lambda: (s := alice.sessions.state(sid)) and after in replies(s) and s)
    finally:
        stop(runner)
    received = [e for e in log(state) if e.get("kind") == "received"]
    assert any(
        (e.get("message") or {}).get("request", {}).get("subtype") == "interrupt" for e in received
    ), received
    assert len([e for e in log(state) if e.get("kind") == "start"]) == 1  # one process throughout
    assert f"turn 2 of {s.agent.session_id}" in replies(s)[after].text
