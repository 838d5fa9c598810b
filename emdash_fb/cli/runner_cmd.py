"""``emdash-fb runner``: the process that answers queued messages with an agent."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import uuid
from pathlib import Path

import typer

from ..firebase.target import resolve_target


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--agent-opt {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _configure_logging(verbose: bool) -> None:
    """One readable line per event; the libraries' retry chatter (with URLs) only when asked."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    for name in ("urllib3", "firebase_admin", "google", "aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.ERROR)


def runner(
    agent: str = typer.Option(
        "echo", "--agent", help="echo | command | openai | claude | codex | gemini"
    ),
    agent_opt: list[str] = typer.Option(
        [], "--agent-opt", help="Agent option KEY=VALUE (repeatable)."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=64, help="Sessions answered in parallel."
    ),
    lease: float = typer.Option(30.0, "--lease", min=1.0, help="Lease length in seconds."),
    runner_id: str | None = typer.Option(
        None,
        "--id",
        help="Runner id, shown to members (default: random, says nothing of the host).",
    ),
    serve: list[str] = typer.Option(
        [],
        "--serve",
        help="Serve only these owners (repeatable): uid:UID, email:ADDRESS, domain:DOMAIN; "
        "default: everyone on the project's allowlist (emdash-fb admin allow).",
    ),
    flush_ms: int = typer.Option(
        100, "--flush-ms", min=10, help="Show the first reply text this soon."
    ),
    flush_bytes: int = typer.Option(
        1024, "--flush-bytes", min=16, help="Flush at once when this much is buffered."
    ),
    min_chunk_bytes: int = typer.Option(
        128,
        "--min-chunk-bytes",
        min=0,
        help="While text flows, hold chunks until this big (0: flush every --flush-ms).",
    ),
    max_flush_ms: int = typer.Option(
        250, "--max-flush-ms", min=10, help="...but never hold text longer than this."
    ),
    retries: int = typer.Option(
        1, "--retries", min=0, help="Retries of a turn interrupted mid-reply."
    ),
    grace: float = typer.Option(
        10.0, "--grace", min=0.0, help="Seconds to finish turns on SIGTERM."
    ),
    workdir: Path = typer.Option(Path("."), "--workdir", help="Folder the agent's tools may read."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log details (HTTP retries, each claim) for debugging."
    ),
) -> None:
    """Claim queued messages and stream the agent's replies back."""
    # First of all: a SIGTERM or Ctrl-C while starting up (imports, the agent, the
    # database client) must stop the runner cleanly too, not kill it half-made.
    early: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    from ..firebase.admin import RunnerDatabase
    from ..runner.agents import AgentError, load_agent
    from ..runner.service import Runner
    from ..runner.turn import TurnSettings
    from ..session.allowlist import ServeSpec

    _configure_logging(verbose)
    try:
        spec = ServeSpec.parse(serve)
    except ValueError as exc:
        typer.echo(f"error: --serve: {exc}", err=True)
        raise typer.Exit(2) from None
    rid = runner_id or f"r-{uuid.uuid4().hex[:8]}"
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", rid):
        typer.echo(f"error: --id {rid!r}: use 1-40 letters, digits, '-' or '_'", err=True)
        raise typer.Exit(2)
    target = resolve_target()
    try:
        the_agent = load_agent(agent, _options(agent_opt))
        preflight = getattr(the_agent, "preflight", None)
        if preflight is not None:
            preflight()  # a CLI that isn't installed: say so now, not at the first turn
    except AgentError as exc:
        typer.echo(f"error: {exc.summary}", err=True)
        raise typer.Exit(2) from None
    db = RunnerDatabase(
        rid,
        project_id=target.project_id,
        database_url=None if target.is_emulator else target.database_url,
    )
    settings = TurnSettings(
        lease_s=lease,
        flush_interval=flush_ms / 1000,
        flush_bytes=flush_bytes,
        min_chunk_bytes=min_chunk_bytes,
        max_flush_delay=max(max_flush_ms, flush_ms) / 1000,
        max_attempts=retries + 1,
        workdir=workdir.resolve(),
    )
    service = Runner(
        db, the_agent, concurrency=concurrency, settings=settings, grace_s=grace, serve=spec
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.request_stop)
        if early:
            service.request_stop()
        await service.run()

    try:
        asyncio.run(main())
    finally:
        db.close()
