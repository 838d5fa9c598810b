"""Stopping a turn of codex or gemini: each test runs once per agent, against its fake CLI.

Both agents run their CLI once a turn through emdash_fb/runner/agents/json_cli.py,
which also stops it: a cancel sends SIGINT so the CLI saves its session (codex
calls it a thread) and the next turn resumes it, a CLI that ignores SIGINT is
killed after ``interrupt_grace``, a consumer cancelled outside the agent's
generator still stops the CLI, and a turn past its ``timeout`` fails and stops it.
The fakes (tests/support/fake_codex.py, fake_gemini.py) tick on ``slow`` until
SIGINT, ignore it on ``slow stubborn``, and write their pids to the state folder.
What else each agent does is in test_agents_codex.py and test_agents_gemini.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.support.agent_runs import (
    CODEX,
    GEMINI,
    FakeCli,
    alive,
    cancel_busy,
    cancel_on,
    collect,
    failure,
    gone_soon,
    pids,
    text_of,
    turn,
)

# How each agent's errors name its CLI, and its answer to "and now?" as a session's second turn.
NAMED = {"codex": "Codex CLI", "gemini": "Gemini CLI"}
AGAIN = {
    "codex": "codex heard: and now? [turn 2]",
    "gemini": "Let me see. gemini heard: and now? [turn 2]",
}


@pytest.fixture(params=[CODEX, GEMINI], ids=lambda fake: fake.agent)
def fake(request) -> FakeCli:
    return request.param


@pytest.fixture
def state(fake, tmp_path, monkeypatch) -> Path:
    return fake.state(tmp_path, monkeypatch)


@pytest.fixture
def work(tmp_path, state) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_cancel_interrupts_the_cli_which_keeps_the_session_for_the_next_turn(fake, work, state):
    elapsed, seen = asyncio.run(cancel_on(fake.load(), turn(work, "slow"), "tick"))
    assert elapsed < 1.5
    for pid in pids(state):
        assert gone_soon(pid), f"process {pid} survived the cancel"
    session = seen[0].session_id
    saved = json.loads((state / "sessions" / f"{session}.json").read_text())
    assert saved["interrupted"] is True  # it got SIGINT (Ctrl+C), not just a kill
    events = collect(fake.load(), turn(work, "and now?", resume=session))
    assert text_of(events) == AGAIN[fake.agent]


def test_a_cli_that_ignores_sigint_is_killed_after_the_grace(fake, work, state):
    elapsed, _ = asyncio.run(cancel_on(fake.load(), turn(work, "slow stubborn"), "tick"))
    assert 0.4 < elapsed < 2.0
    for pid in pids(state):
        assert gone_soon(pid), f"process {pid} survived the cancel"


def test_cancelling_a_busy_consumer_still_stops_the_cli(fake, work, state):
    elapsed, started = asyncio.run(cancel_busy(fake.load(), turn(work, "slow"), state))
    assert elapsed < 0.5
    assert not any(alive(p) for p in started)


def test_a_turn_that_takes_too_long_times_out_and_stops_the_cli(fake, work, state):
    start = time.monotonic()
    error, seen = failure(fake.load(timeout="0.8"), turn(work, "slow"))
    assert error.summary == f"{NAMED[fake.agent]} timed out after 0.8 s"
    assert time.monotonic() - start < 2.5
    assert "tick 0" in text_of(seen)
    for pid in pids(state):
        assert gone_soon(pid)
