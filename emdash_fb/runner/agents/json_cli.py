"""CLIs run once per turn that print JSON lines and resume a native session by id.

What it owns, for the ``codex`` and ``gemini`` agents: building the command
line, telling "not installed" and "too old" apart from a failed turn, reading
stdout as JSON lines of any length (non-JSON lines and malformed events are
skipped and logged, never the end of a turn), interrupting with SIGINT so the
CLI can save its session before it is killed, and retrying a turn with the
whole prompt when the CLI no longer knows the session to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import shlex
import signal
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from emdash_fb.runner.agents.base import (
    AgentError,
    AgentEvent,
    Attachment,
    Options,
    TurnInput,
    format_message,
    mode_line,
)
from emdash_fb.runner.agents.process import (
    check_installed,
    collect_tail,
    feed,
    killpg,
    read_lines,
    settle,
    spawn,
    stop,
    tail_text,
)
from emdash_fb.session.text import for_log, one_line

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1800.0
#: After SIGINT, how long a CLI may take to save its session and exit before it is killed.
INTERRUPT_GRACE = 3.0
#: After the CLI exited, stdout is read until it has been idle this long (a stray
#: background child can hold the pipe open forever).
EXIT_GRACE = 1.0
#: After the CLI reported the end of the turn, how long it may take to exit.
FINISH_WAIT = 5.0
POLL = 0.05

# What a CLI too old to know a flag prints (clap: "unexpected argument", yargs:
# "Unknown argument(s)", "Invalid values", commander-style "unknown option").
TOO_OLD = re.compile(
    r"unexpected argument|unrecognized (?:subcommand|option|argument)|unknown (?:option|argument)|"
    r"invalid values?\b|found argument .* which wasn't expected",
    re.IGNORECASE,
)
# Native session ids we pass back to a CLI: UUIDs only. Anything else (a name Codex would look
# up, "latest", an index, something starting with "-") is never put on a command line.
SESSION_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


# --------------------------------------------------------------------------- shared plumbing


class StaleSession(Exception):
    """The CLI doesn't have the session the turn asked to resume (raised before any event)."""


class Translator(Protocol):
    """Turns a CLI's stdout lines into events (see :func:`run_json_cli`)."""

    finished: bool  # the CLI reported the end of the turn: stop reading

    def feed_line(self, line: str) -> list[AgentEvent]: ...


@dataclasses.dataclass
class CliExit:
    """How the CLI ended, filled in by :func:`run_json_cli` when it returns normally."""

    returncode: int | None = None
    stderr: str = ""


def cli_argv(
    agent: str, options: Options, env: Mapping[str, str], env_name: str, default: str
) -> list[str]:
    """The CLI's command line from the ``bin`` option, ``env_name``, or ``default``."""
    line = options.get("bin") or env.get(env_name) or default
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise AgentError(f"cannot parse the {agent} agent's bin {line!r}: {exc}") from None
    if not argv:
        raise AgentError(f"the {agent} agent's bin option is empty")
    return argv


def valid_session_id(value: str | None, what: str, logger: logging.Logger = log) -> str | None:
    """``value`` if it is a session id we may pass to the CLI (a UUID), else None (logged)."""
    if not value:
        return None
    if SESSION_ID.match(value):
        return value
    logger.warning("ignoring a %s session id that is not a UUID: %s", what, for_log(value))
    return None


def parse_json(line: str, what: str, logger: logging.Logger = log) -> dict[str, Any] | None:
    """One stdout line as a JSON object, or None: non-JSON lines are skipped (logged at
    debug), malformed JSON and JSON that is not an object are skipped (logged as warnings)."""
    stripped = line.strip()
    if not stripped:
        return None
    if stripped[0] not in "{[":
        logger.debug("%s printed a line that is not JSON: %s", what, for_log(stripped))
        return None
    try:
        obj = json.loads(stripped)
    except ValueError:
        logger.warning("%s printed a malformed JSON line: %s", what, for_log(stripped))
        return None
    if not isinstance(obj, dict):
        logger.warning("%s printed JSON that is not an object: %s", what, for_log(stripped))
        return None
    return obj


def text_field(value: object) -> str:
    return value if isinstance(value, str) else ""


def is_too_old(returncode: int | None, tail: str, seen_events: bool) -> bool:
    return returncode not in (0, None) and not seen_events and bool(TOO_OLD.search(tail))


def attachment_name(index: int, attachment: Attachment) -> str:
    """A file name for an attachment that is safe on any command line: ``N-name.ext``."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", attachment.name).lstrip("._-")[:80] or "file"
    if attachment.is_image and "." not in stem:
        stem += "." + (attachment.media_type.split("/", 1)[1] or "img")
    return f"{index}-{stem}"


def with_text_files(turn: TurnInput, texts: list[tuple[str, str]]) -> TurnInput:
    """``turn`` whose new message also carries ``texts`` (name, text) after its own text."""
    if not texts:
        return turn
    extra = "\n\n".join(f"{one_line(name)}:\n{text}" for name, text in texts)
    message = dataclasses.replace(turn.message, text=f"{turn.message.text}\n\n{extra}")
    return dataclasses.replace(turn, message=message)


def continued_prompt(turn: TurnInput) -> str:
    """What a resumed native session gets: the mode line and the new message."""
    return f"{mode_line(turn.mode)}\n\n{format_message(turn.message)}\n"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def interrupt(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGINT to the CLI's process group (Ctrl+C), then wait up to ``grace`` s for it to go."""
    killpg(proc.pid, signal.SIGINT)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + grace
    while loop.time() < give_up and (proc.returncode is None or _group_alive(proc.pid)):
        await asyncio.sleep(POLL)


async def _lines(
    proc: asyncio.subprocess.Process, deadline: float, what: str, timeout: float
) -> AsyncIterator[str]:
    """The CLI's stdout lines until EOF (or the CLI exited and stdout went idle)."""
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    reader = read_lines(proc.stdout, what=what)
    pending: asyncio.Future[str] | None = None
    exited_at: float | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(reader))
            now = loop.time()
            if now >= deadline:
                raise AgentError(f"{what} timed out after {timeout:g} s")
            done, _ = await asyncio.wait({pending}, timeout=min(POLL, deadline - now))
            if done:
                task, pending = pending, None
                try:
                    line = task.result()
                except StopAsyncIteration:
                    return
                exited_at = None
                yield line
            elif proc.returncode is not None:
                exited_at = exited_at or loop.time()
                if loop.time() - exited_at >= EXIT_GRACE:
                    return
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending}, timeout=0.5)
            if pending.done() and not pending.cancelled():
                pending.exception()  # retrieved
        with contextlib.suppress(RuntimeError):
            await reader.aclose()


async def run_json_cli(
    argv: list[str],
    workdir: Path,
    *,
    stdin: str,
    translator: Translator,
    result: CliExit,
    what: str,
    install: str,
    timeout: float,
    grace: float,
    env: dict[str, str] | None = None,
) -> AsyncIterator[AgentEvent]:
    """Run a CLI for one turn: write ``stdin``, stream ``translator``'s events from its stdout.

    Returns when the translator saw the end of the turn or stdout ended; then
    ``result`` holds the exit status and the tail of stderr. However it ends, the
    CLI's process group is gone afterwards; a CLI still running (cancelled, timed
    out, an error) gets SIGINT first and ``grace`` seconds to save its session.
    """
    check_installed(argv, what, install)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    proc = await spawn(argv, workdir, with_stdin=True, what=what, install=install, env=env)
    stderr_tail: deque[str] = deque()
    helpers: list[asyncio.Task[Any]] = [
        asyncio.create_task(collect_tail(proc.stderr, stderr_tail)),
    ]
    if proc.stdin is not None:
        helpers.append(asyncio.create_task(feed(proc.stdin, stdin.replace("\x00", "").encode())))
    try:
        async with contextlib.aclosing(_lines(proc, deadline, what, timeout)) as lines:
            async for line in lines:
                for event in translator.feed_line(line):
                    yield event
                if translator.finished:
                    break
        # The turn is over (or stdout closed): let the CLI exit on its own. After the end of
        # the turn it gets a few seconds (then it is stopped); otherwise the rest of the time.
        give_up = min(deadline, loop.time() + FINISH_WAIT) if translator.finished else deadline
        while proc.returncode is None and loop.time() < give_up:
            await asyncio.sleep(POLL)
        if proc.returncode is None and not translator.finished:
            raise AgentError(f"{what} timed out after {timeout:g} s")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(helpers[0]), 0.5)
        result.returncode = proc.returncode
        result.stderr = tail_text(stderr_tail)
    finally:
        for task in helpers:
            task.cancel()
        if proc.returncode is None:
            await interrupt(proc, grace)
        await stop(proc)
        await settle(helpers)
