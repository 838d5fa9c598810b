"""Cancels that stick and status that tells the truth, with runners killed for real.

Runners are real processes (`emdash-fb runner`) killed with SIGKILL or SIGTERM;
what members see is read through the product's live view.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session import events as ev
from emdash_fb.session.view import SessionView
from tests.runner.test_runner import _runner_process, owner_get, replies, wait_for
from tests.support.runner import BackgroundRunner

MakeUser = Callable[..., AppContext]
LONG = " ".join(["long"] * 300)


def kill9(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def streaming(emu: ThreadedEmulator, sid: str, mid: str) -> dict[str, Any]:
    return wait_for(lambda: owner_get(emu, f"sessions/{sid}/turns/{mid}/chunks"), timeout=30)


def test_a_cancel_while_the_runner_is_dead_is_never_carried_out(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    doomed = _runner_process(rules_emu, "--agent-opt", "rate=20", "--lease", "2", "--id", "doomed")
    try:
        mid = alice.sessions.send(sid, LONG).message
        streaming(rules_emu, sid, mid)
    finally:
        kill9(doomed)
    before = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}")
    assert alice.sessions.cancel(sid, mid) in ("stopping", "cancelled")
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), lease_s=2.0):
        wait_for(
            lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "cancelled",
            timeout=30,
        )
        later = alice.sessions.send(sid, "and this one?").message
        wait_for(lambda: later in replies(alice.sessions.state(sid)), timeout=30)
    after = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}")
    assert after["attempt"] == before["attempt"]  # no retry ever started
    assert after.get("chunks") == before.get("chunks")  # nothing more was said
    state = alice.sessions.state(sid)
    assert [q.mid for q in state.queue] == []


def test_a_dead_runner_shows_as_stalled_and_cancel_takes_effect_at_once(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    doomed = _runner_process(rules_emu, "--agent-opt", "rate=20", "--lease", "2", "--id", "gone")
    try:
        mid = bob.sessions.send(sid, LONG).message
        streaming(rules_emu, sid, mid)
    finally:
        kill9(doomed)
    killed_at = time.monotonic()

    async def watch() -> tuple[list[str], float, list[ev.Event]]:
        seen: list[ev.Event] = []
        view = SessionView(alice.target, alice.auth, alice.sessions, sid, seen.append)
        task = asyncio.create_task(view.run())
        try:
            deadline = time.monotonic() + 20
            while not any(isinstance(e, ev.AgentStatus) and e.state == "stalled" for e in seen):
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.05)
            stalled_after = time.monotonic() - killed_at
            outcome = await asyncio.to_thread(bob.sessions.cancel, sid, mid)
            assert outcome == "cancelled"  # not "cancelling...": nobody is left to ask
            while not any(isinstance(e, ev.TurnEnded) and e.turn.mid == mid for e in seen):
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.05)
            return [e.state for e in seen if isinstance(e, ev.AgentStatus)], stalled_after, seen
        finally:
            view.stop()
            await task

    states, stalled_after, seen = asyncio.run(watch())
    assert stalled_after < 2 + 2 + 3  # the lease, its grace and a tick or two
    assert states[0] in ("working", "stalled") and "stalled" in states
    ended = next(e for e in seen if isinstance(e, ev.TurnEnded) and e.turn.mid == mid)
    assert ended.turn.state == "cancelled"
    assert owner_get(rules_emu, f"sessions/{sid}/lock") is None
    assert owner_get(rules_emu, f"sessions/{sid}/queue") is None
    assert owner_get(rules_emu, f"sessions/{sid}/transcript/{mid}/state") == "cancelled"


def test_a_hand_back_then_a_crash_is_still_retried(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    """--retries 1 allows one crash; a SIGTERM hand-back is not a crash."""
    alice = make_user("alice")
    sid = alice.sessions.share().session
    polite = _runner_process(rules_emu, "--agent-opt", "rate=20", "--grace", "0", "--id", "p")
    mid = alice.sessions.send(sid, LONG).message
    streaming(rules_emu, sid, mid)
    polite.send_signal(signal.SIGTERM)
    polite.communicate(timeout=20)
    assert owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "interrupted"
    doomed = _runner_process(rules_emu, "--agent-opt", "rate=20", "--lease", "2", "--id", "d")
    try:
        wait_for(
            lambda: (
                owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/attempt") == 2
                and owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/chunks")
            ),
            timeout=30,
        )
    finally:
        kill9(doomed)
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), lease_s=2.0):
        state = wait_for(
            lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s, timeout=30
        )
    turn = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}")
    assert turn["state"] == "done" and turn["crashes"] == 1 and turn["attempt"] == 3
    assert "alice asked" in replies(state)[mid].text


def test_send_wait_follows_an_interruption_to_exactly_the_final_text(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Any
) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env = {**env, **alice.env}
    doomed = _runner_process(rules_emu, "--agent-opt", "rate=20", "--lease", "2", "--id", "x")
    waiter = subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "--profile", "alice", "--session", sid]
        + ["send", LONG, "--wait", "--timeout", "60", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mid = wait_for(
            lambda: next(iter(owner_get(rules_emu, f"sessions/{sid}/queue") or {}), None)
        )
        streaming(rules_emu, sid, mid)
        kill9(doomed)
        with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "200"}), lease_s=2.0):
            out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    result = json.loads(out)
    final = replies(alice.sessions.state(sid))[mid]
    assert result["reply"]["state"] == "done"
    assert result["reply"]["text"] == final.text and final.text.startswith("alice asked")


def test_sigterm_while_the_runner_starts_up_stops_it_cleanly(rules_emu: ThreadedEmulator) -> None:
    for delay in (0.05, 0.3, 0.8):
        proc = _runner_process(rules_emu, "--id", f"early-{int(delay * 100)}")
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert "Traceback" not in out, out
        assert proc.returncode in (0, -signal.SIGTERM), (delay, proc.returncode, out)
        if delay >= 0.3:  # past the interpreter's own start-up: our handler runs
            assert proc.returncode == 0, out
