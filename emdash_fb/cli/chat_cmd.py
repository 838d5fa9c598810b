"""``emdash-fb chat`` and ``emdash-fb demo``: the interactive REPL, alone or with everything local."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .commands import ctx_of
from .identity_cmd import adopt_name
from .joinline import browser_link, join_command

if TYPE_CHECKING:
    from ..webview import WebServer

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "database.rules.json"


def chat(
    ctx: typer.Context,
    join: str | None = typer.Option(None, "--join", help="Join a session by invite code."),
    share: bool = typer.Option(False, "--share", help="Start a new session already shared."),
    new: bool = typer.Option(
        False, "--new", help="Start a new private session (default: back into your last one)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Your display name (a rename when signed in: same identity)."
    ),
) -> None:
    """Talk with the agent and each other in a shared session."""
    from .repl import ChatRepl

    app = ctx_of(ctx)
    preflight(app)
    if name:
        for note in adopt_name(app, name):
            typer.echo(note, err=True)
    repl = ChatRepl(app, join=join, resume=app.session_override, share=share, new=new)
    raise typer.Exit(asyncio.run(repl.run()))


def preflight(app: Any) -> None:
    """Fail fast, in one line that names the fix, when nothing answers: before the REPL,
    not as a prompt that sits at 'connecting…' for ever."""
    from ..firebase.errors import NetworkError

    target = app.target  # ConfigError: says what to set (and `make demo`)
    try:
        app.auth.current()
        app.sessions.my_session_ids()
    except NetworkError as exc:
        fix = (
            "is the emulator running? start it with `emdash-fb emulators start` (or `make demo`)"
            if target.is_emulator
            else "check the network and the project's settings (`emdash-fb config show`)"
        )
        raise NetworkError(f"{exc}: {fix}") from None


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        # as the server binds (reuse_address): a just-stopped demo's TIME_WAIT
        # sockets must not push a restarted one off the standard ports
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _demo_runner(project_id: str, env: dict[str, str], log_file: Path) -> Any:
    """The offline echo runner on a thread, logging to a file (not over the REPL)."""
    from ..runner.agents import load_agent
    from ..runner.background import RunnerThread

    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    runner_log = logging.getLogger("emdash_fb.runner")
    runner_log.addHandler(handler)
    runner_log.setLevel(logging.INFO)
    runner_log.propagate = False
    return RunnerThread(
        project_id, env, load_agent("echo", {"rate": "40"}), runner_id="demo", workdir=Path.cwd()
    )


def _allow_demo_owner(project_id: str, app: Any) -> None:
    """The demo allows its own user to own sessions (as `emdash-fb admin allow me` would)."""
    from ..firebase.admin import AdminDatabase
    from ..session import allowlist

    db = AdminDatabase(project_id=project_id, env=app.env)
    try:
        allowlist.allow(db, "uid", app.auth.current().uid)
    finally:
        db.close()


def demo(ctx: typer.Context) -> None:
    """Start the bundled emulator, an offline agent runner and a shared REPL, all in one."""
    from ..emulator.config import EmulatorConfig
    from ..emulator.server import ThreadedEmulator
    from .repl import ChatRepl

    if not RULES_FILE.exists():
        typer.echo(
            f"error: the rules file is missing ({RULES_FILE}); run the demo from a checkout",
            err=True,
        )
        raise typer.Exit(2)
    cfg = EmulatorConfig(rules_path=RULES_FILE)
    host = "127.0.0.1"
    cfg.ports = {
        "database": 9000 if _port_free(host, 9000) else 0,
        "auth": 9099 if _port_free(host, 9099) else 0,
    }
    logging.getLogger("emdash_fb.emulator").setLevel(logging.WARNING)
    emulator = ThreadedEmulator(cfg).start()
    env = emulator.env()
    os.environ.update(env)
    web = _demo_web()
    log_file = Path(tempfile.gettempdir()) / "emdash-fb-demo-runner.log"
    runner = _demo_runner(cfg.project_id, dict(os.environ), log_file).start()
    app = ctx_of(ctx)
    app.env = dict(os.environ)
    _allow_demo_owner(cfg.project_id, app)
    from rich.text import Text

    banner: list[Any] = [
        "emdash-fb demo: bundled emulator "
        f"({env['FIREBASE_DATABASE_EMULATOR_HOST']}), offline echo agent (log: {log_file})",
    ]
    repl = ChatRepl(app, share=True, come_back=False)  # its emulator stops when it does

    def show_invite(code: str) -> None:
        repl.out(Text.assemble(Text("invite code: ", style="bold"), Text(code, style="bold green")))
        # Plain print, not rich: one unbroken line that works pasted into any shell.
        line = join_command(app.target, code, profile="guest", name="guest")
        print(f"In a second terminal, from any folder, run:\n{line}", flush=True)
        print(f"Or in a browser (viewers): {browser_link(app.target, code)}", flush=True)

    repl.show_invite = show_invite  # type: ignore[method-assign]
    for line in banner:
        print(line, flush=True)
    try:
        code = asyncio.run(repl.run())
    finally:
        runner.stop()
        if web is not None:
            web.stop()
        emulator.stop()
    raise typer.Exit(code)


def _demo_web() -> WebServer | None:
    """The web viewer beside the demo (its port if free), so /share's link works as printed."""
    from ..firebase.target import resolve_target
    from ..webview import DEFAULT_PORT, ENV_WEB_URL, WebFilesMissing, web_dir
    from ..webview import WebServer as Server

    try:
        host = "127.0.0.1"
        port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else 0
        server = Server(resolve_target(os.environ), web_dir(os.environ), host, port)
        os.environ[ENV_WEB_URL] = server.start()
    except (WebFilesMissing, OSError):
        return None  # the demo works without it; /share then names `emdash-fb web`
    return server
