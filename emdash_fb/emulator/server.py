"""Running the emulators: binding ports, rules-file reload, import/export, shutdown.

``EmulatorServer`` is the asyncio server (used by ``emdash-fb emulators start``);
``ThreadedEmulator`` runs the same server on a background thread on free ports,
for test fixtures, benchmarks and ``emdash-fb demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from .config import EmulatorConfig, default_namespace
from .cors import cors
from .database import Database
from .rtdb_http import MAX_BODY_BYTES, RtdbHandler, StreamSettings
from .rules import RulesError, RuleSet

log = logging.getLogger("emdash_fb.emulator")

EXPORT_METADATA = "firebase-export-metadata.json"
DATABASE_EXPORT = "database_export"
AUTH_EXPORT = "auth_export"
EMULATOR_VERSION = "emdash-fb-1"
RULES_POLL_SECONDS = 0.5


#: gc thresholds for the emulator's process (generation 0, 1, 2): see start()
GC_THRESHOLDS = (100_000, 50, 50)


def load_rules(path: Path | None) -> RuleSet:
    if path is None:
        return RuleSet.allow_all()
    return RuleSet.from_text(path.read_text(encoding="utf-8"))


class EmulatorServer:
    """The RTDB and Auth emulators of one project, on one event loop."""

    def __init__(
        self, config: EmulatorConfig, *, stream_settings: StreamSettings | None = None
    ) -> None:
        self.config = config
        self.database = Database(
            load_rules(config.rules_path),
            default_namespace=default_namespace(config.project_id),
        )
        self.rtdb = RtdbHandler(
            self.database, project_id=config.project_id, stream_settings=stream_settings
        )
        self._runners: dict[str, web.AppRunner] = {}
        self.bound: dict[str, tuple[str, int]] = {}
        self._auth_app: web.Application | None = None
        self._rules_task: asyncio.Task[None] | None = None
        self._rules_mtime: float | None = None

    # -- addresses -----------------------------------------------------------

    def host_port(self, service: str) -> str:
        host, port = self.bound[service]
        return f"{host}:{port}"

    @property
    def database_host(self) -> str:
        return self.host_port("database")

    @property
    def auth_host(self) -> str:
        return self.host_port("auth")

    def env(self) -> dict[str, str]:
        """The standard variables that point Firebase clients at these emulators."""
        out = {}
        if "database" in self.bound:
            out["FIREBASE_DATABASE_EMULATOR_HOST"] = self.database_host
        if "auth" in self.bound:
            out["FIREBASE_AUTH_EMULATOR_HOST"] = self.auth_host
        return out

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        # The database is one big tree of long-lived dicts, and every write replaces a few
        # of them (copy on write): with the default thresholds the collector rescans the
        # whole tree every few hundred requests, a 50-100 ms pause in a 30 MB session.
        # Collect young objects as usual, the old generation far less often.
        gc.set_threshold(*GC_THRESHOLDS)
        if "database" in self.config.only:
            app = web.Application(client_max_size=MAX_BODY_BYTES + 1, middlewares=[cors])
            app.router.add_route("*", "/{tail:.*}", self.rtdb.handle)
            await self._serve("database", app)
        if "auth" in self.config.only:
            from .auth import create_auth_app

            self._auth_app = create_auth_app(self.config.project_id)
            await self._serve("auth", self._auth_app)
        if self.config.import_dir is not None:
            self.import_from(self.config.import_dir)
        if self.config.rules_path is not None:
            self._rules_mtime = _mtime(self.config.rules_path)
            self._rules_task = asyncio.create_task(self._watch_rules())

    async def _serve(self, service: str, app: web.Application) -> None:
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        host, port = self.config.hosts[service], self.config.ports[service]
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        bound_port = sockets[0].getsockname()[1] if sockets else port
        self._runners[service] = runner
        self.bound[service] = (host, bound_port)

    async def stop(self) -> None:
        if self._rules_task is not None:
            self._rules_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rules_task
        if self.config.export_on_exit is not None:
            self.export_to(self.config.export_on_exit)
        for listener in list(self.rtdb.active_streams):
            listener.close("shutdown")
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()

    # -- rules -----------------------------------------------------------------

    async def _watch_rules(self) -> None:
        assert self.config.rules_path is not None
        while True:
            await asyncio.sleep(RULES_POLL_SECONDS)
            self.reload_rules_if_changed()

    def reload_rules_if_changed(self) -> bool:
        path = self.config.rules_path
        if path is None:
            return False
        mtime = _mtime(path)
        if mtime == self._rules_mtime:
            return False
        self._rules_mtime = mtime
        try:
            rules = load_rules(path)
        except (OSError, RulesError) as exc:
            log.warning("rules file %s not reloaded: %s", path, exc)
            return False
        self.database.set_rules_everywhere(rules)
        log.info("reloaded rules from %s", path)
        return True

    # -- import / export (the `firebase emulators:export` layout) --------------

    def export_to(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"version": EMULATOR_VERSION}
        if "database" in self.bound:
            db_dir = folder / DATABASE_EXPORT
            db_dir.mkdir(exist_ok=True)
            for name, ns in self.database.namespaces.items():
                (db_dir / f"{name}.json").write_text(
                    json.dumps(ns.root, ensure_ascii=False), encoding="utf-8"
                )
            meta["database"] = {"version": EMULATOR_VERSION, "path": DATABASE_EXPORT}
        if self._auth_app is not None:
            self._auth_model().export_to(folder / AUTH_EXPORT)
            meta["auth"] = {"version": EMULATOR_VERSION, "path": AUTH_EXPORT}
        (folder / EXPORT_METADATA).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def import_from(self, folder: Path) -> None:
        meta_file = folder / EXPORT_METADATA
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
        db_dir = folder / meta.get("database", {}).get("path", DATABASE_EXPORT)
        if "database" in self.bound and db_dir.is_dir():
            for file in sorted(db_dir.glob("*.json")):
                data = json.loads(file.read_text(encoding="utf-8"))
                self.database.namespace(file.stem).replace_all(data)
        auth_dir = folder / meta.get("auth", {}).get("path", AUTH_EXPORT)
        if self._auth_app is not None and auth_dir.is_dir():
            self._auth_model().import_from(auth_dir)

    def _auth_model(self) -> Any:
        from .auth import AUTH_PROJECT

        assert self._auth_app is not None
        return self._auth_app[AUTH_PROJECT]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return None


class ThreadedEmulator:
    """An ``EmulatorServer`` on its own thread and loop (free ports by default).

    Used as a context manager by tests, benchmarks and the demo. Everything
    talks to it over HTTP; nothing reaches into its memory.
    """

    def __init__(self, config: EmulatorConfig | None = None, **stream_opts: Any) -> None:
        if config is None:
            config = EmulatorConfig()
            config.ports = {"database": 0, "auth": 0}
        self.config = config
        self.server = EmulatorServer(
            config, stream_settings=StreamSettings(**stream_opts) if stream_opts else None
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="emdash-emulator", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # report bind failures to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def start(self) -> ThreadedEmulator:
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the emulator's loop (for operator actions like reloads)."""
        fut = asyncio.run_coroutine_threadsafe(_as_coro(fn, *args), self._loop)
        return fut.result(10)

    def __enter__(self) -> ThreadedEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def database_host(self) -> str:
        return self.server.database_host

    @property
    def auth_host(self) -> str:
        return self.server.auth_host

    @property
    def project_id(self) -> str:
        return self.config.project_id

    def env(self) -> dict[str, str]:
        return self.server.env()


async def _as_coro(fn: Any, *args: Any) -> Any:
    return fn(*args)
