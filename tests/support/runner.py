"""Run the real agent runner on a background thread against a test emulator."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.admin import RunnerDatabase
from emdash_fb.runner.agents import Agent, load_agent
from emdash_fb.runner.service import Runner
from emdash_fb.runner.turn import TurnSettings


class BackgroundRunner:
    def __init__(
        self,
        emu: ThreadedEmulator,
        agent: Agent | None = None,
        *,
        runner_id: str | None = None,
        concurrency: int = 4,
        poll_s: float = 0.5,
        **settings: Any,
    ) -> None:
        self.db = RunnerDatabase(
            runner_id or f"test-{uuid.uuid4().hex[:6]}",
            project_id=emu.project_id,
            env={**emu.env()},
        )
        self.runner = Runner(
            self.db,
            agent or load_agent("echo", {"rate": "0"}),
            concurrency=concurrency,
            settings=TurnSettings(**settings),
            poll_s=poll_s,
            grace_s=2.0,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-runner")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.runner.run())

    def __enter__(self) -> BackgroundRunner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.runner.request_stop)
            self._thread.join(15)
        self.db.close()
