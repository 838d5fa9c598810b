"""``emdash-fb emulators start``: the bundled RTDB + Auth emulators in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..emulator.config import ConfigError, EmulatorConfig, parse_only

if TYPE_CHECKING:
    from ..emulator.server import EmulatorServer

emulators_app = typer.Typer(
    help="Run the bundled Firebase emulators (RTDB + Auth).", no_args_is_help=True
)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@emulators_app.command("start")
def start(
    config: Path = typer.Option(Path("firebase.json"), "--config", help="firebase.json to read."),
    project: str | None = typer.Option(None, "--project", help="Project id (default demo-emdash)."),
    only: str | None = typer.Option(None, "--only", help="Comma list: database,auth."),
    import_dir: Path | None = typer.Option(None, "--import", help="Folder to import data from."),
    export_on_exit: Path | None = typer.Option(
        None, "--export-on-exit", help="Folder to export data to on exit."
    ),
) -> None:
    """Start the emulators and run until Ctrl-C or SIGTERM."""
    from ..emulator.rules import RulesError
    from ..emulator.server import EmulatorServer  # aiohttp: only when starting one

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        cfg = EmulatorConfig.from_file(
            config,
            project_id=project,
            only=parse_only(only),
            import_dir=import_dir,
            export_on_exit=export_on_exit,
        )
        if import_dir is not None and not import_dir.is_dir():
            raise ConfigError(f"--import: {import_dir} is not a folder")
        server = EmulatorServer(cfg)
    except (ConfigError, RulesError, OSError) as exc:
        fail(str(exc))
        return
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        fail(f"could not start: {exc} (is another emulator using the port?)")


async def _serve(server: EmulatorServer) -> None:
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cfg = server.config
    lines = [f"emdash-fb emulators ready (project {cfg.project_id})"]
    if "database" in server.bound:
        lines.append(
            f"  database  http://{server.database_host}/?ns={cfg.project_id}-default-rtdb"
            f"  rules: {cfg.rules_path or 'none (allow all)'}"
        )
    if "auth" in server.bound:
        lines.append(f"  auth      http://{server.auth_host}")
    lines.append("Point clients at them with:")
    lines += [f"  export {k}={v}" for k, v in server.env().items()]
    lines.append(
        "Ctrl-C to stop" + (f" (exports to {cfg.export_on_exit})" if cfg.export_on_exit else "")
    )
    print("\n".join(lines), flush=True)
    await stop.wait()
    await server.stop()
    print(
        "emulators stopped" + (f"; exported to {cfg.export_on_exit}" if cfg.export_on_exit else ""),
        flush=True,
    )
