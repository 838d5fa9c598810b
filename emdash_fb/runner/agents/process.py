"""Agent CLIs as child processes: start, read, stop (shared by every CLI-backed agent).

What it owns: starting a CLI in its own process group with one-line errors for
the usual ways that fails (not installed, not executable, no working folder,
argument list too long), reading its stdout as lines of any length (asyncio's
``readline`` stops at 64 KB; agent CLIs print single JSON lines far longer),
keeping the tail of stderr for error messages, and stopping the whole process
group (SIGTERM, then SIGKILL) however a turn ends.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import os
import shutil
import signal
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from emdash_fb.runner.agents.base import AgentError

CHUNK = 64 * 1024
STDERR_TAIL = 500
#: Between SIGTERM and SIGKILL when stopping a CLI.
TERM_GRACE = 0.4
#: A line longer than this is an error rather than unbounded memory.
MAX_LINE = 32 * 1024 * 1024


def check_installed(argv: Sequence[str], what: str, install: str) -> None:
    """The one-line error for a CLI that isn't there (``what not found: NAME; install it ...``)."""
    exe = argv[0]
    found = Path(exe).is_file() if os.sep in exe else shutil.which(exe) is not None
    if not found:
        raise AgentError(f"{what} not found: {exe}; install it with {install}")


async def spawn(
    argv: list[str],
    workdir: Path,
    *,
    with_stdin: bool,
    what: str = "agent command",
    install: str = "",
    env: dict[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` in ``workdir`` in a new process group, pipes for stdout and stderr.

    ``what`` names the program in errors ("agent command", "Claude Code"); ``install``
    is the hint added when it is not found ("install it with npm i -g ...").
    """
    if not workdir.is_dir():
        raise AgentError(f"the working folder {workdir} does not exist")
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            start_new_session=True,
            env=env,
            limit=CHUNK,
        )
    except FileNotFoundError:
        hint = f": {install}" if install else ""
        raise AgentError(f"{what} not found: {argv[0]}{hint}") from None
    except PermissionError:
        raise AgentError(f"{what} is not executable: {argv[0]}") from None
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise AgentError(
                "the conversation is too long to pass as an argument; use prompt=stdin"
            ) from None
        raise AgentError(f"could not start {what} {argv[0]}: {exc.strerror or exc}") from None


async def feed(stdin: asyncio.StreamWriter, data: bytes, *, close: bool = True) -> bool:
    """Write ``data`` (and close stdin unless ``close`` is false).

    A process that stops reading is not an error: returns False instead.
    """
    try:
        stdin.write(data)
        await stdin.drain()
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False
    finally:
        if close:
            with contextlib.suppress(Exception):
                stdin.close()


async def read_lines(
    stream: asyncio.StreamReader, *, what: str = "the agent"
) -> AsyncIterator[str]:
    """Every line of ``stream`` (without its line break), decoded as UTF-8 with
    replacement, however long; the last line even without a final newline.

    Raises AgentError for a line over :data:`MAX_LINE`.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        chunk = await stream.read(CHUNK)
        final = not chunk
        pending += decoder.decode(chunk, final=final)
        if final and pending:
            pending += "\n"
        *lines, pending = pending.split("\n")
        if len(pending) > MAX_LINE:
            raise AgentError(f"{what} printed a line that is too long (over {MAX_LINE} bytes)")
        for line in lines:
            yield line.rstrip("\r")
        if final:
            return


async def collect_tail(stream: asyncio.StreamReader | None, tail: deque[str]) -> None:
    """Keep roughly the last STDERR_TAIL*4 characters of ``stream`` in ``tail``."""
    if stream is None:
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    size = 0
    while True:
        chunk = await stream.read(CHUNK)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            tail.append(text)
            size += len(text)
            while size - len(tail[0]) > STDERR_TAIL * 4 and len(tail) > 1:
                size -= len(tail.popleft())
        if not chunk:
            return


def tail_text(parts: deque[str]) -> str:
    """The kept stderr tail, at most STDERR_TAIL characters."""
    text = "".join(parts).strip()
    if len(text) > STDERR_TAIL:
        text = "…" + text[-STDERR_TAIL:]
    return text


def exit_error(returncode: int, tail: str, *, what: str = "agent command") -> AgentError:
    """The one-line failure for a process that ended with ``returncode``."""
    if returncode < 0:
        try:
            signame = signal.Signals(-returncode).name
        except ValueError:
            signame = f"signal {-returncode}"
        summary = f"{what} was killed by {signame}"
    else:
        summary = f"{what} exited with status {returncode}"
    last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
    if last:
        summary += f": {last[:200]}"
    return AgentError(summary, tail if tail.strip() != last else "")


async def settle(tasks: list[asyncio.Task[object]]) -> None:
    """Let cancelled helper tasks finish, without raising what they raised."""
    if tasks:
        await asyncio.wait(tasks, timeout=0.5)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # mark as retrieved


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop(proc: asyncio.subprocess.Process, grace: float = TERM_GRACE) -> None:
    """Stop the process's whole group: SIGTERM, SIGKILL after ``grace`` s; close the pipes."""
    loop = asyncio.get_running_loop()
    if proc.returncode is None:
        killpg(proc.pid, signal.SIGTERM)
        give_up = loop.time() + grace
        while proc.returncode is None and loop.time() < give_up:
            await asyncio.sleep(0.02)
    # Whatever is left in the group (the process itself, or its stray children) dies now.
    killpg(proc.pid, signal.SIGKILL)
    give_up = loop.time() + 0.4
    while proc.returncode is None and loop.time() < give_up:
        await asyncio.sleep(0.02)
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()
