"""Run the real agent runner on a background thread against a test emulator."""

from __future__ import annotations

from typing import Any

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import Agent
from emdash_fb.runner.background import RunnerThread


class BackgroundRunner(RunnerThread):
    def __init__(self, emu: ThreadedEmulator, agent: Agent | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("runner_id", None)
        kwargs.setdefault("poll_s", 0.5)
        super().__init__(emu.project_id, dict(emu.env()), agent, **kwargs)
