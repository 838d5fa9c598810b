"""A runner on a background thread with its own event loop (the demo and the tests use it)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from ..firebase.admin import RunnerDatabase
from ..session.allowlist import ServeSpec
from .agents import Agent, load_agent
from .service import Runner
from .turn import TurnSettings


class RunnerThread:
    """``Runner.run()`` on a daemon thread; ``stop()`` asks it to finish like SIGTERM does."""

    def __init__(
        self,
        project_id: str,
        env: Mapping[str, str],
        agent: Agent | None = None,
        *,
        runner_id: str | None = None,
        concurrency: int = 4,
        poll_s: float | None = None,
        grace_s: float = 2.0,
        serve: ServeSpec | None = None,
        **settings: Any,
    ) -> None:
        self.db = RunnerDatabase(
            runner_id or f"bg-{uuid.uuid4().hex[:6]}", project_id=project_id, env=env
        )
        self.runner = Runner(
            self.db,
            agent or load_agent("echo", {"rate": "0"}),
            concurrency=concurrency,
            settings=TurnSettings(**settings),
            poll_s=poll_s,
            grace_s=grace_s,
            serve=serve,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emdash-runner")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.runner.run())

    def start(self) -> RunnerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.runner.request_stop)
            self._thread.join(15)
        self.db.close()

    def __enter__(self) -> RunnerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
