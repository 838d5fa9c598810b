"""Running agent turns in tests: the helpers the agent test files share.

tests/runner/test_agents_{claude,codex,gemini,command,json_cli}.py each drive a
real subprocess through an agent's ``run()``; this module owns what they all
need for that, so each file keeps only what is particular to its agent(s):

* ``fake_cli``: the command line that runs a fake CLI of tests/support with
  ``sys.executable``; ``UUID`` and ``ALICE`` (the owner's uid);
* ``CODEX``, ``GEMINI`` (``FakeCli``): the one-process-per-turn fakes, their state
  folder and environment, and their agent loaded to run them;
* ``turn``: the TurnInput of a turn of the one-process-per-turn CLIs (codex, gemini);
* ``collect`` / ``failure``: a turn run to its end, or to its AgentError;
  ``text_of``: the text it streamed;
* ``records``: what each run of fake_codex / fake_gemini was given (argv.jsonl);
* ``alive``, ``gone_soon``, ``pids``: the processes a turn started;
* ``cancel_on``, ``cancel_busy``: a turn cancelled once it streams a given text.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from emdash_fb.runner.agents import AgentError, ChatMessage, TextDelta, TurnInput, load_agent
from emdash_fb.runner.agents.base import Agent
from emdash_fb.runner.agents.codex import CodexAgent
from emdash_fb.runner.agents.gemini import GeminiAgent

SUPPORT = Path(__file__).resolve().parent
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ALICE = "uidAAAAaa01"


def fake_cli(script: str) -> str:
    """The command line that runs tests/support/``script`` with this Python."""
    return shlex.join([sys.executable, str(SUPPORT / script)])


A = TypeVar("A", bound=Agent)


@dataclass(frozen=True)
class FakeCli(Generic[A]):
    """A fake CLI of tests/support that runs once a turn, and the agent that runs it."""

    agent: str  # the agent's name for load_agent
    kind: type[A]  # the agent's class
    script: str  # the fake: tests/support/<script>
    variable: str  # names the fake's state folder
    unset: tuple[str, ...]  # what else changes how the fake or the agent behave

    @property
    def bin(self) -> str:
        return fake_cli(self.script)

    def state(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """``tmp_path/state``, the fake's state folder; the rest of its environment unset."""
        folder = tmp_path / "state"
        monkeypatch.setenv(self.variable, str(folder))
        for name in self.unset:
            monkeypatch.delenv(name, raising=False)
        return folder

    def load(self, **options: str) -> A:
        """The agent running the fake, with an interrupt grace of 0.5 s unless told."""
        options.setdefault("interrupt_grace", "0.5")
        built = load_agent(self.agent, {"bin": self.bin, **options}, env={})
        assert isinstance(built, self.kind)
        assert built.interrupt_grace == float(options["interrupt_grace"])
        return built


CODEX = FakeCli(
    "codex",
    CodexAgent,
    "fake_codex.py",
    "FAKE_CODEX_STATE",
    ("FAKE_CODEX_VERSION", "FAKE_CODEX_LEGACY_RESUME", "EMDASH_FB_CODEX_BIN"),
)
GEMINI = FakeCli(
    "gemini",
    GeminiAgent,
    "fake_gemini.py",
    "FAKE_GEMINI_STATE",
    (
        "FAKE_GEMINI_VERSION",
        "FAKE_GEMINI_REQUIRE_TRUST",
        "GEMINI_CLI_TRUST_WORKSPACE",
        "EMDASH_FB_GEMINI_BIN",
    ),
)


def turn(work: Path, text: str = "hello there", **kw) -> TurnInput:
    """A turn in ``work``: alice's message (the owner's, unless ``by_owner=False``).

    ``history``, ``message_id``, ``author`` and ``uid`` change the message; any other
    keyword goes to TurnInput as is.
    """
    kw.setdefault("by_owner", True)
    return TurnInput(
        session="s",
        message_id=kw.pop("message_id", "m1"),
        history=kw.pop("history", ()),
        message=ChatMessage("user", kw.pop("author", "alice"), text, kw.pop("uid", ALICE)),
        workdir=work,
        **kw,
    )


def collect(agent, t: TurnInput) -> list:
    """Every event of the turn ``t``, run to its end."""

    async def go():
        return [event async for event in agent.run(t)]

    return asyncio.run(go())


def failure(agent, t: TurnInput) -> tuple[AgentError, list]:
    """The AgentError the turn ``t`` ends with, and the events before it."""
    seen: list = []

    async def go():
        async for event in agent.run(t):
            seen.append(event)

    with pytest.raises(AgentError) as info:
        asyncio.run(go())
    return info.value, seen


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def records(state: Path) -> list[dict]:
    """One dict a run of the fake CLI: what it was given (``$FAKE_X_STATE/argv.jsonl``)."""
    return [json.loads(line) for line in (state / "argv.jsonl").read_text().splitlines()]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone_soon(pid: int, within: float = 1.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def pids(folder: Path) -> list[int]:
    """The pids a command wrote to ``folder/pids`` (its own, then its child's)."""
    return [int(p) for p in (folder / "pids").read_text().split()]


async def cancel_on(
    agent, t: TurnInput, ready: str, *, busy: bool = False, within: float = 10
) -> tuple[float, list]:
    """Run ``t`` until a text delta holds ``ready``, then cancel it.

    Returns how long the cancel took and the events seen. ``busy``: the consumer is
    then awaiting something else, so the cancel lands outside the agent's generator.
    """
    seen: list = []
    got = asyncio.Event()

    async def consume():
        async for event in agent.run(t):
            seen.append(event)
            if isinstance(event, TextDelta) and ready in event.text:
                got.set()
                if busy:
                    await asyncio.sleep(30)  # cancelled here, outside the agent's generator

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got.wait(), within)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return time.monotonic() - start, seen


async def cancel_busy(agent, t: TurnInput, state: Path) -> tuple[float, list[int]]:
    """Cancel a busy consumer of ``t`` at its first tick; wait up to 1.5 s for the
    processes of ``state/pids`` to end. Returns how long the cancel took, and the pids."""
    elapsed, _ = await cancel_on(agent, t, "tick", busy=True)
    started = pids(state)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and any(alive(p) for p in started):
        await asyncio.sleep(0.05)
    return elapsed, started
